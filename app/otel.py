"""OTLP push: the OpenTelemetry SDK's metrics, exported over OTLP/HTTP.

What makes this right under gunicorn:

- One MeterProvider per worker, each with its own `service.instance.id`. The
  app is built in the worker, after the fork (the lab does not preload), so
  the provider, its export thread and its HTTP session are the worker's own.
  Prometheus 3 turns the instance id into the `instance` label: every worker
  pushes its own series, and queries sum them.
- Cumulative temporality (the OTLP exporter's default, and what Prometheus
  takes): each export carries the worker's totals since it started. An export
  that fails because the receiver is down or slow costs resolution, not
  counts: the next one that gets through carries them.
- A request only updates the SDK's in-memory aggregation. The export runs in
  the reader's own thread every OTEL_METRIC_EXPORT_INTERVAL ms, so a receiver
  that is down or slow never delays or fails a request.
- A worker that exits (recycled by max_requests, or stopped) exports what it
  has not yet from gunicorn's worker_exit hook (`close`). Its series
  then end: a recycled worker's replacement starts new ones, so totals are sums
  over instances (`sum(rate(...))`, `increase`), and every recycle adds series
  (README, "The OTLP pipeline under gunicorn").

The bucket boundaries are the lab's (a View): the SDK's defaults are meant for
milliseconds, and the same edges in all pipelines make their quantiles agree.
"""

import uuid
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.semconv.attributes.service_attributes import SERVICE_INSTANCE_ID, SERVICE_NAME

from .labels import Route
from .signals import (
    LATENCY_BUCKETS,
    OTEL_ACTIVE_REQUESTS,
    OTEL_CAPACITY,
    OTEL_DB_QUERY_DURATION,
    OTEL_REQUEST_DURATION,
    SEMCONV_DB_OPERATION,
    SEMCONV_METHOD,
    SEMCONV_ROUTE,
    SEMCONV_STATUS,
    Instrument,
)

FLUSH_TIMEOUT_MS = 5000  # a worker's last export; gunicorn's graceful timeout is 30 s


def meter_provider(
    endpoints: Sequence[str], export_interval_ms: int, service_name: str, *, shutdown_on_exit: bool = False
) -> MeterProvider:
    """A worker's MeterProvider: OTLP/HTTP to each of `endpoints` every `export_interval_ms`, a
    `service.instance.id` of its own, the lab's bucket edges on both histograms.

    More than one endpoint (the HA topology's two Prometheus replicas) gets a reader each, with its
    own exporter and export thread: the SDK's way to send the same measurements to several places.
    A receiver that is down or slow then delays only its own exports, never the other's, and each
    reader keeps its own cumulative state, so each receiver gets whole totals."""
    # OTEL_RESOURCE_ATTRIBUTES (read by the SDK) adds to these; the instance id is this process's.
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_INSTANCE_ID: str(uuid.uuid4())})
    readers = [
        PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=endpoint), export_interval_millis=export_interval_ms
        )
        for endpoint in endpoints
    ]
    buckets = ExplicitBucketHistogramAggregation(LATENCY_BUCKETS)
    views = [
        View(instrument_name=instrument.name, aggregation=buckets)
        for instrument in (OTEL_REQUEST_DURATION, OTEL_DB_QUERY_DURATION)
    ]
    return MeterProvider(
        metric_readers=readers, resource=resource, views=views, shutdown_on_exit=shutdown_on_exit
    )


class OtelRecorder:
    """Record requests with the OpenTelemetry SDK and push them over OTLP/HTTP."""

    def __init__(self, endpoints: Sequence[str], export_interval_ms: int, service_name: str):
        # Not the global provider: each app built (tests build many) owns its own, and closes it.
        # Nor an atexit hook: gunicorn's worker_exit flushes it, and close() ends it in tests.
        self.provider = meter_provider(endpoints, export_interval_ms, service_name)
        meter = self.provider.get_meter("observability-lab")
        self._duration = _create(meter, OTEL_REQUEST_DURATION)
        self._active = _create(meter, OTEL_ACTIVE_REQUESTS)
        self._capacity = _create(meter, OTEL_CAPACITY)
        self._db_duration = _create(meter, OTEL_DB_QUERY_DURATION)
        self._attributes = {}  # (method, route template, status) -> the request's attributes, built once

    def worker_started(self, threads: int) -> None:
        self._capacity.add(threads)

    def request_started(self, in_flight: bool = True) -> None:
        if in_flight:
            self._active.add(1)

    def request_finished(
        self, method: str, route: Route, status: int, seconds: float, in_flight: bool = True
    ) -> None:
        key = (method, route.template, status)
        attributes = self._attributes.get(key)
        if attributes is None:
            attributes = self._attributes[key] = {
                SEMCONV_METHOD: method,
                SEMCONV_ROUTE: route.template,
                SEMCONV_STATUS: status,
            }
        self._duration.record(seconds, attributes)
        if in_flight:
            self._active.add(-1)

    def db_query(self, operation: str, seconds: float) -> None:
        self._db_duration.record(seconds, {SEMCONV_DB_OPERATION: operation})

    def close(self) -> None:
        """Export what has not been exported yet, then stop the export thread (a worker's exit)."""
        self.provider.shutdown(timeout_millis=FLUSH_TIMEOUT_MS)


def _create(meter, instrument: Instrument):
    create = meter.create_histogram if instrument.kind == "histogram" else meter.create_up_down_counter
    return create(instrument.name, unit=instrument.unit, description=instrument.description)
