"""Each golden signal's query per backend, built from the app's names (app/signals.py).

The dashboards (lab/dashboards/), the experiment (lab/experiment/) and the
tests ask the backends through these, with their own parameters: Grafana's
variables (`$route`, `$endpoint`, `$prefix`, `$__rate_interval`), or the
experiment's route `/`, endpoint `index`, STATSD_PREFIX and a window of a few
scrapes. No consumer writes a series name or a query of its own.

    pull = PullQueries(scope=('job="app"',), window="20s")
    pull.error_ratio(is_(signals.ROUTE, "/"))
    otel = OtelQueries(scope=('job="app"',), window="20s")
    otel.error_ratio(is_(otel.names.route, "/"))
    push = PushQueries(prefix="lab.app")
    push.error_percent("index")
"""

from dataclasses import dataclass
from typing import NamedTuple

from app import signals
from app.signals import (
    DB_QUERY_DURATION,
    HTTP_CAPACITY,
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    LAB_FAULT_ERROR_RATIO,
    LAB_FAULT_LATENCY,
    OTEL_ACTIVE_REQUESTS,
    OTEL_CAPACITY,
    OTEL_DB_QUERY_DURATION,
    OTEL_PROCESS_CPU,
    OTEL_PROCESS_MEMORY,
    OTEL_PROCESS_OPEN_FDS,
    OTEL_REQUEST_DURATION,
    PROCESS_CPU,
    PROCESS_MEMORY,
    PROCESS_OPEN_FDS,
    STATSD_DB_QUERY,
    STATSD_FAULT_ERROR_RATIO,
    STATSD_FAULT_LATENCY,
    STATSD_IN_FLIGHT,
    STATSD_LATENCY,
    STATSD_PROCESS_CPU,
    STATSD_PROCESS_MEMORY,
    STATSD_PROCESS_OPEN_FDS,
    STATSD_REQUESTS,
)

# The status class the availability SLO counts as failed: as a PromQL regex, and as a Graphite glob.
ERRORS, ERRORS_GLOB = "5..", "5*"


def is_(label: str, value: str) -> str:
    """A PromQL matcher: the label equals value."""
    return f'{label}="{value}"'


def matches(label: str, regex: str) -> str:
    """A PromQL matcher: the label matches the regex (a Grafana variable expands to one)."""
    return f'{label}=~"{regex}"'


class PromNames(NamedTuple):
    """The series and labels a PromQL pipeline stores the golden signals under."""

    requests: str  # a counter of requests, with the status label
    duration: signals.Metric  # the request latency histogram
    method: str
    route: str
    status: str
    in_flight: str
    capacity: str
    db_duration: signals.Metric
    db_operation: str
    cpu: str  # a process's CPU seconds, a counter
    memory: str  # its resident memory, bytes
    open_fds: str
    process: str  # the label that names one gunicorn process (a worker's slot, or the master)


# Scraped: the app's own names.
PULL_NAMES = PromNames(
    HTTP_REQUESTS.name,
    HTTP_REQUEST_DURATION,
    signals.METHOD,
    signals.ROUTE,
    signals.STATUS,
    HTTP_IN_FLIGHT.name,
    HTTP_CAPACITY.name,
    DB_QUERY_DURATION,
    signals.OPERATION,
    PROCESS_CPU.name,
    PROCESS_MEMORY.name,
    PROCESS_OPEN_FDS.name,
    signals.WORKER,
)
# Pushed over OTLP: the semantic conventions' names, as Prometheus 3 translates them. There is
# no request counter: the histogram's `_count` is one.
_OTEL_DURATION = OTEL_REQUEST_DURATION.metric
PROMETHEUS_OTEL_NAMES = PromNames(
    _OTEL_DURATION.name + "_count",
    _OTEL_DURATION,
    *_OTEL_DURATION.labels,
    OTEL_ACTIVE_REQUESTS.metric.name,
    OTEL_CAPACITY.metric.name,
    OTEL_DB_QUERY_DURATION.metric,
    *OTEL_DB_QUERY_DURATION.metric.labels,
    OTEL_PROCESS_CPU.metric.name,
    OTEL_PROCESS_MEMORY.metric.name,
    OTEL_PROCESS_OPEN_FDS.metric.name,
    "instance",  # each process pushes under its own service.instance.id, the master too
)


@dataclass(frozen=True)
class PullQueries:
    """PromQL over the app's series that `scope` selects, rates over `window`."""

    scope: tuple[str, ...] = ()  # matchers on every app series: the job, or Grafana's instances
    window: str = "$__rate_interval"
    names: PromNames = PULL_NAMES

    def select(self, metric: str, *matchers: str) -> str:
        """A selector of one of the app's series, always within the scope."""
        return f"{metric}{{{','.join((*matchers, *self.scope))}}}"

    def rate(self, metric: str, *matchers: str) -> str:
        return f"rate({self.select(metric, *matchers)}[{self.window}])"

    def current(self, metric: str, *matchers: str, offset: str = "", fresh: bool = False) -> str:
        """The series' value now (or `offset` ago); a scraped one is current as long as its target is."""
        return self.select(metric, *matchers) + (f" offset {offset}" if offset else "")

    def total(self, *matchers: str) -> str:
        """Requests answered since the app started (summed over workers and replicas)."""
        return f"sum({self.current(self.names.requests, *matchers)})"

    def count(self, histogram: signals.Metric, *matchers: str) -> str:
        """How many observations a histogram holds (its `_count`), summed over workers and replicas."""
        return f"sum({self.current(histogram.name + '_count', *matchers)})"

    def traffic(self, *matchers: str, by: str = "") -> str:
        """Traffic: requests per second."""
        rate = self.rate(self.names.requests, *matchers)
        return f"sum by ({by}) ({rate})" if by else f"sum({rate})"

    def error_ratio(self, *matchers: str, status: str = ERRORS) -> str:
        """Errors: the share of requests answered with `status` (a regex); 0 when none failed."""
        failed = f"sum({self.rate(self.names.requests, *matchers, matches(self.names.status, status))})"
        return f"({failed} or vector(0)) / {self.traffic(*matchers)}"

    def latency(self, q: float, *matchers: str, by: str = "", metric: signals.Metric | None = None) -> str:
        """Latency: the q-quantile from the histogram's buckets, summed over workers and replicas."""
        grouping = ", ".join(("le", by)) if by else "le"
        buckets = self.rate((metric or self.names.duration).name + "_bucket", *matchers)
        return f"histogram_quantile({q:g}, sum by ({grouping}) ({buckets}))"

    def latency_between(self, q: float, seconds: float, *matchers: str) -> str:
        """The q-quantile of exactly the requests between `seconds` ago and the query time.

        Buckets that did not exist `seconds` ago (a series born meanwhile) count from 0.
        """
        bucket = self.names.duration.name + "_bucket"
        buckets = f"sum by (le) ({self.current(bucket, *matchers)})"
        then = f"sum by (le) ({self.current(bucket, *matchers, offset=f'{round(seconds * 1000)}ms')})"
        return f"histogram_quantile({q:g}, {buckets} - ({then} or {buckets} * 0))"

    def saturation(self) -> str:
        """Saturation: requests in flight over what the live workers can answer at once."""
        in_flight = self.current(self.names.in_flight, fresh=True)
        capacity = self.current(self.names.capacity, fresh=True)
        return f"sum({in_flight}) / sum({capacity})"

    def cpu(self, by: str = "") -> str:
        """Saturation, CPU: the cores each gunicorn process keeps busy (user + system), by process."""
        return f"sum by ({by or self.names.process}) ({self.rate(self.names.cpu, self._processes())})"

    def memory(self, by: str = "") -> str:
        """Saturation, memory: each gunicorn process's resident memory, in bytes."""
        selected = self.current(self.names.memory, self._processes(), fresh=True)
        return f"sum by ({by or self.names.process}) ({selected})"

    def open_fds(self, by: str = "") -> str:
        """Each gunicorn process's open file descriptors."""
        selected = self.current(self.names.open_fds, self._processes(), fresh=True)
        return f"sum by ({by or self.names.process}) ({selected})"

    def _processes(self) -> str:
        # Only the app's gunicorn processes: the blog worker and Prometheus export process_* too,
        # without the label (a Grafana scope selects instances, not jobs).
        return f'{self.names.process}=~".+"'

    def db_latency(self, q: float, by: str = "") -> str:
        """The cause behind a slow /database/: the q-quantile of the time spent in the database."""
        return self.latency(q, by=by or self.names.db_operation, metric=self.names.db_duration)

    def fault_error_ratio(self, *matchers: str, by: str = signals.ROUTE) -> str:
        """Injected: the share of requests failed on purpose, per route (app/faults.py, as scraped)."""
        return self._fault(LAB_FAULT_ERROR_RATIO, matchers, by)

    def fault_latency(self, *matchers: str, by: str = signals.ROUTE) -> str:
        """Injected: the delay added on purpose, in seconds, per route."""
        return self._fault(LAB_FAULT_LATENCY, matchers, by)

    def _fault(self, metric: signals.Metric, matchers: tuple[str, ...], by: str) -> str:
        # One series per scraped instance; replicas each have their own faults file, and a sum of
        # their ratios would mean nothing: max is the worst fault set on any of them.
        selected = self.select(metric.name, *matchers)
        return f"max by ({by}) ({selected})" if by else f"max({selected})"

    def blog_worker_mean(self) -> str:
        """The blog post's worker (not an app series: outside the scope): mean time of its Summary."""
        name = signals.BLOG_WORKER_PROCESSING.name
        return f"sum(rate({name}_sum[{self.window}])) / sum(rate({name}_count[{self.window}]))"


@dataclass(frozen=True)
class OtelQueries(PullQueries):
    """PromQL over the OTLP push, as Prometheus 3 (or the native twin) stores it.

    Each worker pushes its own series (`instance` = its service.instance.id), and a
    pushed series gets no staleness marker when its worker exits: Prometheus keeps
    it in an instant query's 5-minute lookback, the native twin for a few export
    intervals. So a total reads every worker's last value within `since` (the
    exited ones included: their counts stay counted), and a gauge only the workers
    that pushed within `window` (an exited one's capacity is gone).
    """

    names: PromNames = PROMETHEUS_OTEL_NAMES
    since: str = "1h"

    def current(self, metric: str, *matchers: str, offset: str = "", fresh: bool = False) -> str:
        within = self.window if fresh else self.since
        shift = f" offset {offset}" if offset else ""
        return f"last_over_time({self.select(metric, *matchers)}[{within}]{shift})"


# StatsD's legacy namespace: how the daemon names a stat's Graphite series, by type.
COUNTS, PER_SECOND, TIMERS, GAUGES = "stats_counts", "stats", "stats.timers", "stats.gauges"
# StatsD reports on itself at every flush: a series that always exists, one point per flush.
STATSD_OWN_SERIES = "stats.statsd.graphiteStats.calculationtime"


@dataclass(frozen=True)
class PushQueries:
    """Graphite targets over the StatsD names under `prefix` (Grafana's `$prefix`, or STATSD_PREFIX).

    Nodes are counted from the end of a name (aliasByNode(..., -3)): the prefix may
    have any number of dots.
    """

    prefix: str = "$prefix"

    def requests(self, endpoint: str = "*", method: str = "*", status: str = "*", per_second=True) -> str:
        """The request counters: per second (`stats.`), or counts per flush (`stats_counts.`)."""
        name = STATSD_REQUESTS.format(endpoint=endpoint, method=method, status=status)
        return f"{PER_SECOND if per_second else COUNTS}.{self.prefix}.{name}"

    def timer(self, endpoint: str = "*", method: str = "*", stat: str = "*") -> str:
        """A request timer's per-flush stat (mean, upper_90, count ...), in ms."""
        return f"{TIMERS}.{self.prefix}.{STATSD_LATENCY.format(endpoint=endpoint, method=method)}.{stat}"

    def endpoints(self) -> str:
        """The Graphite find query whose nodes are the endpoints seen (Grafana's `$endpoint`)."""
        return f"{TIMERS}.{self.prefix}.{STATSD_LATENCY.format(endpoint='*', method='')}".removesuffix(".")

    def traffic(self, endpoint: str = "*") -> str:
        """Traffic: requests per second, summed by endpoint."""
        return f"groupByNode({self.requests(endpoint)}, -3, 'sumSeries')"

    def error_percent(self, endpoint: str = "*", status: str = ERRORS_GLOB, name: str = "5xx") -> str:
        """Errors: percent of requests answered with `status` (a glob), per flush."""
        failed, every = self.requests(endpoint, status=status), self.requests(endpoint)
        return f"alias(asPercent(sumSeries({failed}), sumSeries({every})), '{name}')"

    def latency(self, endpoint: str = "*", stats: str = "{mean,upper_90,upper}") -> str:
        """Latency: per-flush stats of the request timers, named endpoint.method.stat."""
        return f"aliasByNode({self.timer(endpoint, stat=stats)}, -3, -2, -1)"

    def in_flight_series(self) -> str:
        """The in-flight gauge, summed by StatsD over every worker and replica."""
        return f"{GAUGES}.{self.prefix}.{STATSD_IN_FLIGHT}"

    def in_flight(self) -> str:
        """Saturation's numerator: requests in flight (StatsD knows no capacity)."""
        return f"alias({self.in_flight_series()}, 'in flight')"

    def process_series(self, template: str, worker: str = "*") -> str:
        """One of a gunicorn process's gauges (STATSD_PROCESS_*): `worker_0`, ..., `master`."""
        return f"{GAUGES}.{self.prefix}.{template.format(worker=worker)}"

    def cpu(self, worker: str = "*") -> str:
        """Saturation, CPU: the cores each process keeps busy, from its CPU seconds, named by process."""
        return f"aliasByNode(perSecond({self.process_series(STATSD_PROCESS_CPU, worker)}), -2)"

    def memory(self, worker: str = "*") -> str:
        """Saturation, memory: each process's resident memory, in bytes, named by process."""
        return f"aliasByNode({self.process_series(STATSD_PROCESS_MEMORY, worker)}, -2)"

    def open_fds(self, worker: str = "*") -> str:
        return f"aliasByNode({self.process_series(STATSD_PROCESS_OPEN_FDS, worker)}, -2)"

    def db_timer(self, operation: str = "select", stat: str = "upper_90") -> str:
        """A per-flush stat of the database query timer, in ms."""
        return f"{TIMERS}.{self.prefix}.{STATSD_DB_QUERY.format(operation=operation)}.{stat}"

    def fault_error_ratio(self, endpoint: str = "*") -> str:
        """Injected: the share of requests failed on purpose (0..1), named by endpoint."""
        return self._fault(STATSD_FAULT_ERROR_RATIO, endpoint)

    def fault_latency(self, endpoint: str = "*") -> str:
        """Injected: the delay added on purpose, in ms, named by endpoint."""
        return self._fault(STATSD_FAULT_LATENCY, endpoint)

    def _fault(self, template: str, endpoint: str) -> str:
        # Absolute gauges that every worker of an instance overwrites with the same value: the series
        # is the value set (replicas overwrite each other too: set the same faults on each).
        return f"aliasByNode({GAUGES}.{self.prefix}.{template.format(endpoint=endpoint)}, -2)"


def with_free_nodes(template: str) -> str:
    """A StatsD template (app/signals.py) with a `*` for each of its free nodes: endpoint, method, ..."""
    return template.format(endpoint="*", method="*", status="*", operation="*", worker="*")


def rate_window(period_seconds: float, least_seconds: float = 4) -> str:
    """A rate() window of four periods (scrapes or exports), at least `least_seconds`: like Grafana's
    $__rate_interval, it always holds a few samples."""
    return f"{max(4 * period_seconds, least_seconds):g}s"


@dataclass(frozen=True)
class Pipelines:
    """The three pipelines' query sets, made together so that they ask the same of each backend.

    `of_stack` reads a running stack (the experiment, the tests): the app's jobs,
    rate windows from its scrape and export intervals, its STATSD_PREFIX.
    `of_grafana` is the dashboards': Grafana's variables in their place.
    """

    pull: PullQueries
    otel: OtelQueries
    push: PushQueries

    @classmethod
    def of_stack(
        cls,
        *,
        prefix: str,
        scrape_seconds: float,
        export_seconds: float,
        service: str = "app",  # OTEL_SERVICE_NAME: the pushed series' job, as "app" is the scrape's
        least_seconds: float = 4,
    ) -> "Pipelines":
        return cls(
            PullQueries(scope=(is_("job", "app"),), window=rate_window(scrape_seconds, least_seconds)),
            OtelQueries(scope=(is_("job", service),), window=rate_window(export_seconds, least_seconds)),
            PushQueries(prefix=prefix),
        )

    @classmethod
    def of_grafana(cls) -> "Pipelines":
        """Every scraped series filtered by the `instance` variable (one replica under `--scale`); the OTLP
        push's instances are workers, not replicas, so it has no such filter."""
        rate = "$__rate_interval"
        return cls(
            PullQueries(scope=(matches("instance", "$instance"),), window=rate),
            OtelQueries(window=rate),
            PushQueries(prefix="$prefix"),
        )
