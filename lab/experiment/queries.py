"""What the experiment asks each backend about the route under test, and where the OTLP push is read."""

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..backends import Prometheus
from ..queries import (
    ERRORS,
    ERRORS_GLOB,
    STATSD_OWN_SERIES,
    Pipelines,
    PullQueries,
    PushQueries,
    is_,
    matches,
)
from ..settings import ROUTE_UNDER_TEST, route
from .result import Counts

# The route the experiment loads, and its Flask endpoint (its StatsD name).
UNDER_TEST = route(ROUTE_UNDER_TEST)


@dataclass(frozen=True)
class RouteQueries:
    """A PromQL pipeline's queries about the route under test, in that pipeline's names."""

    over: PullQueries  # the scrape's, or OtelQueries for the OTLP push

    @property
    def route(self) -> str:
        return is_(self.over.names.route, UNDER_TEST.template)

    @property
    def total(self) -> str:
        return self.over.total(self.route)

    @property
    def errors(self) -> str:
        return self.over.total(self.route, matches(self.over.names.status, ERRORS))

    def rate(self) -> str:
        return self.over.traffic(self.route)

    def error_ratio(self) -> str:
        return self.over.error_ratio(self.route)

    def quantile(self, q: float) -> str:
        return self.over.latency(q, self.route)

    def quantile_between(self, q: float, seconds: float) -> str:
        """The q-quantile of exactly the requests between `seconds` ago and the query time."""
        return self.over.latency_between(q, seconds, self.route)

    def saturation(self) -> str:
        """In flight over capacity, of the whole app: queueing shows here, in no timer."""
        return self.over.saturation()

    def all(self) -> list[str]:
        return [
            self.total,
            self.errors,
            self.rate(),
            self.error_ratio(),
            self.quantile(0.95),
            self.quantile_between(0.95, 60),
            self.saturation(),
        ]


@dataclass(frozen=True)
class Queries:
    """What each backend is asked about the route under test: the contract's queries (lab/queries.py)."""

    pipelines: Pipelines  # the stack's (Pipelines.of_stack)

    @property
    def pull(self) -> RouteQueries:
        return RouteQueries(self.pipelines.pull)

    @property
    def otel(self) -> RouteQueries:
        return RouteQueries(self.pipelines.otel)

    @property
    def push(self) -> PushQueries:
        return self.pipelines.push

    @property
    def graphite_total(self) -> str:
        return self.push.requests(UNDER_TEST.endpoint, per_second=False)

    @property
    def graphite_errors(self) -> str:
        return self.push.requests(UNDER_TEST.endpoint, status=ERRORS_GLOB, per_second=False)

    def graphite_rate(self) -> str:
        return f"sumSeries({self.push.requests(UNDER_TEST.endpoint)})"

    def graphite_upper(self, percent: int) -> str:
        return self.push.timer(UNDER_TEST.endpoint, "GET", f"upper_{percent}")

    def all(self) -> list[str]:
        """Every query the experiment sends (the contract test reads them)."""
        return [
            *self.pull.all(),
            *self.otel.all(),
            self.graphite_total,
            self.graphite_errors,
            self.graphite_rate(),
            *(self.graphite_upper(percent) for percent in (95, 99)),
            STATSD_OWN_SERIES,
        ]


@dataclass(frozen=True)
class PromQLSource:
    """A pipeline's backend read with PromQL, its queries about `/`, and how often it gets a new value."""

    backend: Prometheus
    queries: RouteQueries
    step: float  # seconds: the scrape interval, or the export interval

    def counts(self) -> Counts:
        return Counts(self.backend.value(self.queries.total), self.backend.value(self.queries.errors))

    def percentiles_between(self, since: float, until: float) -> dict[str, float]:
        """p95 and p99 in ms of exactly the requests between `since` and `until`."""
        return {
            f"p{q}": 1000
            * self.backend.value(
                self.queries.quantile_between(q / 100, until - since), at=until, empty=math.nan
            )
            for q in (95, 99)
        }

    def reaches(self, query: str, threshold: float) -> Callable[[], bool]:
        """A check: whether the value of `query` has reached `threshold` yet."""
        return lambda: self.backend.value(query) >= threshold

    def series(self, query: str, start: float, end: float) -> list[tuple[float, float]]:
        return self.backend.series(query, start, end, self.step)

    def saturation_peak(self, start: float, end: float) -> float:
        """The highest in flight / capacity between `start` and `end`."""
        return max(
            (value for _, value in self.series(self.queries.saturation(), start, end)), default=math.nan
        )


def otlp_receiver(prometheus: str, native_receiver: str) -> str:
    """Where the OTLP push's series are: in Prometheus when it runs its OTLP receiver (compose),
    else in the native stack's receiver, `native_receiver` (Prometheus there only scrapes)."""
    flags = Prometheus(prometheus.rstrip("/")).flags()
    return prometheus if flags.get("web.enable-otlp-receiver") == "true" else native_receiver
