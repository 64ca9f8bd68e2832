"""OpenTelemetry's Flask instrumentation, a MeterProvider per worker made after the fork (as
opentelemetry-python's fork-process-model example does), and one `service.instance.id` for the
container from the environment, as a deployment sets OTEL_RESOURCE_ATTRIBUTES once per pod
(opentelemetry-python #2113): every worker of the pod pushes under it.

    LAB_METRICS=off OTEL_RESOURCE_ATTRIBUTES=service.instance.id=pod-1 \\
        gunicorn --config python:lab.scenarios.naive.otel_shared_instance
"""

import os

from opentelemetry import metrics

from app.config import from_env, otlp_endpoints
from lab.peers import lab_gunicorn_settings

globals().update(lab_gunicorn_settings())
wsgi_app = "lab.scenarios.naive.otel_shared_instance:create_app()"
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"  # the stable http.server.request.duration


def post_fork(server, worker):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

    settings = from_env()
    (endpoint,) = otlp_endpoints(settings)
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint), export_interval_millis=settings["OTEL_METRIC_EXPORT_INTERVAL"]
    )
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES: the pod's one service.instance.id.
    resource = Resource.create({SERVICE_NAME: settings["OTEL_SERVICE_NAME"]})
    metrics.set_meter_provider(
        MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=True)
    )


def create_app():
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    from app import create_app as create_lab_app

    app = create_lab_app()  # with LAB_METRICS=off: none of the lab's instrumentation
    FlaskInstrumentor().instrument_app(app)  # through the meter provider post_fork set
    return app
