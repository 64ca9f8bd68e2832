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

Each worker's CPU, memory and open files are the conventions' process metrics
(`process.cpu.time`, `process.memory.usage`, `process.open_file_descriptor.count`),
observed by opentelemetry-instrumentation-system-metrics on the worker's own
provider once it runs (gunicorn's post_worker_init): under the worker's instance
id, so they are per worker as the request metrics are. The master serves no
request and has no provider; the worker in slot 0 (app/processes.py) observes
it on a second provider, under an instance id derived from the master's host and
pid, so the master's series go on unbroken when that worker is recycled.

The bucket boundaries are the lab's (a View): the SDK's defaults are meant for
milliseconds, and the same edges in all pipelines make their quantiles agree.
"""

import os
import socket
import uuid
from collections.abc import Iterator, Sequence

import psutil
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.semconv.attributes.service_attributes import SERVICE_INSTANCE_ID, SERVICE_NAME

from . import processes
from .labels import Route
from .signals import (
    CPU_MODE,
    LATENCY_BUCKETS,
    OTEL_ACTIVE_REQUESTS,
    OTEL_CAPACITY,
    OTEL_DB_QUERY_DURATION,
    OTEL_PROCESS_CPU,
    OTEL_PROCESS_MEMORY,
    OTEL_PROCESS_OPEN_FDS,
    OTEL_REQUEST_DURATION,
    SEMCONV_DB_OPERATION,
    SEMCONV_METHOD,
    SEMCONV_ROUTE,
    SEMCONV_STATUS,
    Instrument,
)

FLUSH_TIMEOUT_MS = 5000  # a worker's last export; gunicorn's graceful timeout is 30 s
# What opentelemetry-instrumentation-system-metrics observes in each worker: the process metrics
# of the contract, each state of the CPU time (its default config holds the system's too).
PROCESS_METRICS_CONFIG = {
    OTEL_PROCESS_CPU.name: ["user", "system"],
    OTEL_PROCESS_MEMORY.name: None,
    OTEL_PROCESS_OPEN_FDS.name: None,
}
MASTER_INSTANCE = "gunicorn-master-{id}"


def master_instance_id(pid: int) -> str:
    """The master's `service.instance.id`: the same for every worker that observes it (slot 0's,
    recycled or not), another for another master or host."""
    return MASTER_INSTANCE.format(id=uuid.uuid5(uuid.NAMESPACE_DNS, f"{socket.gethostname()}.{pid}"))


def meter_provider(
    endpoints: Sequence[str],
    export_interval_ms: int,
    service_name: str,
    *,
    shutdown_on_exit: bool = False,
    instance_id: str | None = None,
) -> MeterProvider:
    """A worker's MeterProvider: OTLP/HTTP to each of `endpoints` every `export_interval_ms`, a
    `service.instance.id` of its own, the lab's bucket edges on both histograms.

    More than one endpoint (the HA topology's two Prometheus replicas) gets a reader each, with its
    own exporter and export thread: the SDK's way to send the same measurements to several places.
    A receiver that is down or slow then delays only its own exports, never the other's, and each
    reader keeps its own cumulative state, so each receiver gets whole totals."""
    # OTEL_RESOURCE_ATTRIBUTES (read by the SDK) adds to these; the instance id is this process's.
    instance_id = instance_id or str(uuid.uuid4())
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_INSTANCE_ID: instance_id})
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
        self._settings = (endpoints, export_interval_ms, service_name)
        self._master_provider = None  # slot 0's, from `worker_started`
        self._system_metrics = None
        meter = self.provider.get_meter("observability-lab")
        self._duration = _create(meter, OTEL_REQUEST_DURATION)
        self._active = _create(meter, OTEL_ACTIVE_REQUESTS)
        self._capacity = _create(meter, OTEL_CAPACITY)
        self._db_duration = _create(meter, OTEL_DB_QUERY_DURATION)
        self._attributes = {}  # (method, route template, status) -> the request's attributes, built once

    def worker_started(self, threads: int, slot: int | None = None) -> None:
        """Count the worker's capacity; under gunicorn (a slot), observe its process, and in slot 0
        the master's."""
        self._capacity.add(threads)
        if slot is None:
            return
        # Made here, in the worker: the instrumentor reads the process that creates it.
        self._system_metrics = SystemMetricsInstrumentor(config=PROCESS_METRICS_CONFIG)
        self._system_metrics.instrument(meter_provider=self.provider)
        if slot == 0:
            master = os.getppid()
            self._master_provider = meter_provider(*self._settings, instance_id=master_instance_id(master))
            observe_process(self._master_provider, psutil.Process(master))

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
        if self._system_metrics is not None:
            # One instrumentor per process (the library's singleton): free it for the next provider.
            self._system_metrics.uninstrument()
            self._system_metrics = None
        for provider in (self.provider, self._master_provider):
            if provider is not None:
                provider.shutdown(timeout_millis=FLUSH_TIMEOUT_MS)


def observe_process(provider: MeterProvider, process: psutil.Process) -> None:
    """The contract's process metrics of another process than this one (the master), with the same
    names, units and attributes as opentelemetry-instrumentation-system-metrics gives a worker."""
    meter = provider.get_meter("observability-lab.process")

    def cpu(options: CallbackOptions) -> Iterator[Observation]:
        now = processes.read(process)
        if now is not None:
            yield Observation(now.cpu_user, {CPU_MODE: "user"})
            yield Observation(now.cpu_system, {CPU_MODE: "system"})

    def memory(options: CallbackOptions) -> Iterator[Observation]:
        now = processes.read(process)
        if now is not None:
            yield Observation(now.rss_bytes)

    def open_fds(options: CallbackOptions) -> Iterator[Observation]:
        now = processes.read(process)
        if now is not None:
            yield Observation(now.open_fds)

    for instrument, callback in ((OTEL_PROCESS_MEMORY, memory), (OTEL_PROCESS_OPEN_FDS, open_fds)):
        meter.create_observable_up_down_counter(
            instrument.name, [callback], unit=instrument.unit, description=instrument.description
        )
    meter.create_observable_counter(
        OTEL_PROCESS_CPU.name, [cpu], unit=OTEL_PROCESS_CPU.unit, description=OTEL_PROCESS_CPU.description
    )


def _create(meter, instrument: Instrument):
    create = meter.create_histogram if instrument.kind == "histogram" else meter.create_up_down_counter
    return create(instrument.name, unit=instrument.unit, description=instrument.description)
