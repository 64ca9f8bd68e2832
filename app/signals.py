"""The signal contract: every name the app emits, written once.

These names are the lab's public interface. The recorders (app/pull.py,
app/push.py, app/otel.py) emit them; the queries of the dashboards, the experiment and the
tests (lab/queries.py) are built from them; a test checks that nothing names a
series this module does not define. Renaming one is a breaking change.

    HTTP_REQUESTS.name                    # 'http_requests_total'
    STATSD_REQUESTS.format(endpoint="index", method="GET", status=200)
    OTEL_REQUEST_DURATION.metric.name     # 'http_server_request_duration_seconds'
"""

import re
from typing import NamedTuple

from opentelemetry.semconv.attributes import db_attributes, http_attributes
from opentelemetry.semconv.metrics import db_metrics, http_metrics

# -- labels and their bounded values ----------------------------------------------------------------

METHOD, ROUTE, STATUS, OPERATION, ENDPOINT = "method", "route", "status", "operation", "endpoint"
# A gunicorn process: a worker's slot ("0", "1", ...: a pid would grow the series with every
# recycle, app/processes.py) or the master.
WORKER = "worker"
MASTER = "master"
UNMATCHED = "unmatched"  # the route (and StatsD endpoint) of a request that matched no URL rule
OTHER_METHOD = "other"  # the method of a request outside the usual verbs

# 5 ms .. 10 s, with an edge on the `/` latency SLO (300 ms: le="0.3") and on the
# 1, 2 and 3 s that the blog post's /database/ sleeps between.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2, 3, 5, 10)


# -- pull: Prometheus ---------------------------------------------------------------------------------


class Metric(NamedTuple):
    """A Prometheus metric of the contract, as a scrape names it."""

    name: str  # a counter's with its `_total`, as Prometheus stores it
    kind: str  # counter, histogram, gauge or summary
    help: str
    labels: tuple[str, ...] = ()

    def series(self) -> tuple[str, ...]:
        """The names of the series a scrape of this metric holds."""
        if self.kind in ("histogram", "summary"):
            parts = ("_bucket", "_sum", "_count") if self.kind == "histogram" else ("_sum", "_count")
            return (self.name, *(self.name + part for part in parts))
        return (self.name,)


HTTP_REQUESTS = Metric(
    "http_requests_total",
    "counter",
    "HTTP requests answered, by method, URL rule and status.",
    (METHOD, ROUTE, STATUS),
)
HTTP_REQUEST_DURATION = Metric(
    "http_request_duration_seconds",
    "histogram",
    "Time to answer an HTTP request, by method and URL rule.",
    (METHOD, ROUTE),
)
HTTP_IN_FLIGHT = Metric(
    "http_requests_in_flight", "gauge", "Requests being answered now, summed over live workers."
)
HTTP_CAPACITY = Metric(
    "http_requests_capacity", "gauge", "Requests the live workers can answer at once (workers x threads)."
)
DB_QUERY_DURATION = Metric(
    "db_query_duration_seconds",
    "histogram",
    "Time spent in the (simulated) database, by operation.",
    (OPERATION,),
)
# The blog post's own metrics, kept under its names so its readers find them.
BLOG_REQUESTS = Metric("requests_total", "counter", "Application Request Count", (ENDPOINT,))
BLOG_SLOW = Metric("slow", "histogram", "Histogram for the duration in seconds.", (ENDPOINT,))
# The blog post's non-web process (app/blog_worker.py), scraped as job "worker".
BLOG_WORKER_PROCESSING = Metric("request_processing_seconds", "summary", "Time spent processing request")
# The faults in force (app/faults.py), read from the faults file at scrape time: one series
# per route faults apply to, 0 where none, so "injected" can be drawn next to "observed".
LAB_FAULT_ERROR_RATIO = Metric(
    "lab_fault_error_ratio", "gauge", "Share of requests answered 500 on purpose, by URL rule.", (ROUTE,)
)
LAB_FAULT_LATENCY = Metric(
    "lab_fault_latency_seconds", "gauge", "Delay added to each request on purpose, by URL rule.", (ROUTE,)
)

# Each live worker's process and the master's, read at scrape time (app/processes.py): the names
# prometheus_client's own process collector uses, which multiprocess mode does without.
PROCESS_CPU = Metric(
    "process_cpu_seconds_total", "counter", "CPU time used, user and system, by gunicorn process.", (WORKER,)
)
PROCESS_MEMORY = Metric(
    "process_resident_memory_bytes", "gauge", "Resident memory, by gunicorn process.", (WORKER,)
)
PROCESS_OPEN_FDS = Metric(
    "process_open_fds", "gauge", "Open file descriptors, by gunicorn process.", (WORKER,)
)
PROCESS_METRICS = (PROCESS_CPU, PROCESS_MEMORY, PROCESS_OPEN_FDS)

PULL_METRICS = (
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    HTTP_IN_FLIGHT,
    HTTP_CAPACITY,
    DB_QUERY_DURATION,
    BLOG_REQUESTS,
    BLOG_SLOW,
    BLOG_WORKER_PROCESSING,
    LAB_FAULT_ERROR_RATIO,
    LAB_FAULT_LATENCY,
    *PROCESS_METRICS,
)

# -- push: StatsD ---------------------------------------------------------------------------------------

STATSD_PREFIX = "lab.app"  # the default of STATSD_PREFIX (app/config.py)
# Templates after the prefix. `{endpoint}` is the Flask endpoint name, one Graphite node.
STATSD_REQUESTS = "http.requests.{endpoint}.{method}.{status}"  # counter
STATSD_LATENCY = "http.latency.{endpoint}.{method}"  # timer, ms
STATSD_IN_FLIGHT = "http.in_flight"  # gauge, sent as deltas
STATSD_DB_QUERY = "db.query.{operation}"  # timer, ms
# The faults in force, absolute values: every worker sends the same, read from the same file.
STATSD_FAULT_ERROR_RATIO = "faults.{endpoint}.error_ratio"  # gauge, 0..1
STATSD_FAULT_LATENCY = "faults.{endpoint}.latency_ms"  # gauge, ms
# Each process's figures, absolute: every worker sends its own under its slot (`worker_0`, ...), the
# one in slot 0 also the master's (`master`); a worker that exits sends zeros for its slot.
STATSD_WORKER = "worker_{slot}"
STATSD_PROCESS_CPU = "process.{worker}.cpu_seconds"  # gauge, user + system
STATSD_PROCESS_MEMORY = "process.{worker}.memory_rss_bytes"  # gauge
STATSD_PROCESS_OPEN_FDS = "process.{worker}.open_fds"  # gauge
STATSD_PROCESS = (STATSD_PROCESS_CPU, STATSD_PROCESS_MEMORY, STATSD_PROCESS_OPEN_FDS)
# StatsD type -> the templates sent with it (the daemon names their Graphite series by type).
STATSD_NAMES = {
    "counter": (STATSD_REQUESTS,),
    "timer": (STATSD_LATENCY, STATSD_DB_QUERY),
    "gauge": (STATSD_IN_FLIGHT, STATSD_FAULT_ERROR_RATIO, STATSD_FAULT_LATENCY, *STATSD_PROCESS),
}

# -- push: OpenTelemetry (OTLP) ------------------------------------------------------------------------
#
# Names from OpenTelemetry's semantic conventions (opentelemetry-semantic-conventions' stable
# modules where it has them). The attribute *values* are the lab's own, as in the two other
# pipelines: a route that matched no rule is `unmatched` (semconv would leave http.route out)
# and an unusual verb is `other` (semconv says `_OTHER`), so the three agree label for label.

SEMCONV_METHOD = http_attributes.HTTP_REQUEST_METHOD
SEMCONV_ROUTE = http_attributes.HTTP_ROUTE
SEMCONV_STATUS = http_attributes.HTTP_RESPONSE_STATUS_CODE
SEMCONV_DB_OPERATION = db_attributes.DB_OPERATION_NAME

# OTLP unit -> the suffix Prometheus 3 (translation UnderscoreEscapingWithSuffixes, its default)
# appends; annotations in braces ("{request}") name no unit and add none, nor does no unit.
PROMETHEUS_UNIT_SUFFIXES = {"s": "seconds", "By": "bytes"}


def prometheus_name(otel_name: str) -> str:
    """An OpenTelemetry metric or attribute name as Prometheus 3 escapes it: anything but
    letters, digits and `_` (the dots, mostly) becomes `_`."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", otel_name.strip())


class Instrument(NamedTuple):
    """An OpenTelemetry instrument of the contract, and the Prometheus series its OTLP push becomes."""

    name: str  # dotted, as the SDK creates it
    kind: str  # histogram, up_down_counter or counter (observable or not: the same series)
    unit: str  # UCUM, as OTLP carries it
    description: str
    attributes: tuple[str, ...] = ()

    @property
    def metric(self) -> Metric:
        """The metric as Prometheus 3 stores the OTLP push (and VictoriaMetrics with Prometheus naming)."""
        name = prometheus_name(self.name)
        if self.unit and not self.unit.startswith("{"):
            name += "_" + PROMETHEUS_UNIT_SUFFIXES[self.unit]
        # A counter is a monotonic sum, stored with `_total`; an up-down counter is a non-monotonic
        # sum: a gauge, with none.
        kind = {"histogram": "histogram", "counter": "counter"}.get(self.kind, "gauge")
        if kind == "counter":
            name += "_total"
        labels = tuple(prometheus_name(attribute) for attribute in self.attributes)
        return Metric(name, kind, self.description, labels)


OTEL_REQUEST_DURATION = Instrument(
    http_metrics.HTTP_SERVER_REQUEST_DURATION,
    "histogram",
    "s",
    "Duration of HTTP server requests.",
    (SEMCONV_METHOD, SEMCONV_ROUTE, SEMCONV_STATUS),
)
# Experimental in the conventions: opentelemetry-semantic-conventions keeps it in its private
# `_incubating` module, which the lab does not import.
OTEL_ACTIVE_REQUESTS = Instrument(
    "http.server.active_requests", "up_down_counter", "{request}", "Number of active HTTP server requests."
)
# Not in the conventions: the lab's own namespace, as OpenTelemetry asks of custom metrics.
OTEL_CAPACITY = Instrument(
    "lab.http.server.capacity",
    "up_down_counter",
    "{request}",
    "Requests the live workers can answer at once (workers x threads).",
)
OTEL_DB_QUERY_DURATION = Instrument(
    db_metrics.DB_CLIENT_OPERATION_DURATION,
    "histogram",
    "s",
    "Duration of (simulated) database client operations.",
    (SEMCONV_DB_OPERATION,),
)
# Each process's own figures, from opentelemetry-instrumentation-system-metrics in every worker
# (app/otel.py): the conventions' process metrics, under the worker's `service.instance.id`; the
# master's under an id of its own. The instrumentation names the CPU state `type` (the
# conventions now say `cpu.mode`).
CPU_MODE = "type"
OTEL_PROCESS_CPU = Instrument(
    "process.cpu.time", "counter", "s", "Total CPU seconds broken down by different states.", (CPU_MODE,)
)
OTEL_PROCESS_MEMORY = Instrument(
    "process.memory.usage", "up_down_counter", "By", "The amount of physical memory in use."
)
OTEL_PROCESS_OPEN_FDS = Instrument(
    "process.open_file_descriptor.count",
    "up_down_counter",
    "",  # as the instrumentation sends it: no unit (the conventions say {file_descriptor})
    "Number of file descriptors in use by the process.",
)
OTEL_PROCESS_INSTRUMENTS = (OTEL_PROCESS_CPU, OTEL_PROCESS_MEMORY, OTEL_PROCESS_OPEN_FDS)
OTEL_INSTRUMENTS = (
    OTEL_REQUEST_DURATION,
    OTEL_ACTIVE_REQUESTS,
    OTEL_CAPACITY,
    OTEL_DB_QUERY_DURATION,
    *OTEL_PROCESS_INSTRUMENTS,
)
