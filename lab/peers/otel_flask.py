"""Peer of the lab's OTLP push: OpenTelemetry's own Flask instrumentation.

Set up as opentelemetry-python's gunicorn example says
(docs/examples/fork-process-model): the SDK's MeterProvider is made in
`post_fork`, one per worker, since a provider made in the master would fork
without its export thread; it is the global one, which
`FlaskInstrumentor().instrument_app(app)` records through. Exported as the
lab's OTLP push is (app/otel.py): OTLP/HTTP to
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT every OTEL_METRIC_EXPORT_INTERVAL ms,
cumulative, a `service.instance.id` per worker, the lab's bucket boundaries.
No TracerProvider: the instrumentation still opens a (non-recording) span
per request, part of what it costs a user who only wants its metrics.

    LAB_METRICS=off OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://127.0.0.1:4318/v1/metrics \\
        gunicorn --config python:lab.peers.otel_flask
"""

import os

from lab.peers import global_meter_provider, lab_gunicorn_settings

globals().update(lab_gunicorn_settings())
wsgi_app = "lab.peers.otel_flask:create_app()"

# Without it the instrumentation records the old conventions' `http.server.duration` in
# milliseconds, under the old attribute names. With `http`, the stable
# `http.server.request.duration` in seconds: the instrument the lab records, so the same
# bucket boundaries mean the same thing and both push the same series. Set here, in the
# master, so every worker reads it when the instrumentation first looks.
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"


def post_fork(server, worker):
    # The lab's own provider (app/otel.py), so both push alike; the global one, which the
    # instrumentation records through.
    global_meter_provider()


def create_app():
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    from app import create_app as create_lab_app

    app = create_lab_app()  # with LAB_METRICS=off: none of the lab's instrumentation
    FlaskInstrumentor().instrument_app(app)  # through the meter provider post_fork set
    return app
