"""OpenTelemetry set up once at start, as its getting-started pages do, under gunicorn's preload_app:
the MeterProvider, the Flask instrumentation and opentelemetry-instrumentation-system-metrics all
made in the master, before it forks (opentelemetry-python #2767, #3885).

The SDK has learnt to survive the fork: its reader restarts the export thread in each worker and its
provider re-detects `service.instance.id`, so requests are counted right. The system metrics are
not: the instrumentor reads the process that made it, the master, and every worker reports the
master's CPU and memory as its own.

    LAB_METRICS=off gunicorn --config python:lab.scenarios.naive.otel_preload
"""

import os

from lab.peers import global_meter_provider, lab_gunicorn_settings

globals().update(lab_gunicorn_settings())
wsgi_app = "lab.scenarios.naive.otel_preload:create_app()"
preload_app = True  # load the app, and everything it sets up, in the master; fork the workers from it
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"  # the stable http.server.request.duration


def create_app():
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    from app import create_app as create_lab_app
    from app.otel import PROCESS_METRICS_CONFIG

    provider = global_meter_provider()  # here, in the master (preload_app)
    SystemMetricsInstrumentor(config=PROCESS_METRICS_CONFIG).instrument(meter_provider=provider)
    app = create_lab_app()  # with LAB_METRICS=off: none of the lab's instrumentation
    FlaskInstrumentor().instrument_app(app)
    return app
