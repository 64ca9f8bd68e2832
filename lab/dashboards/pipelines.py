"""What a panel reads: the datasources, and each pipeline's queries and the words that say how its
numbers are made (the scrape and the OTLP push with PromQL, StatsD with Graphite targets)."""

from dataclasses import dataclass

from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models.common import DataSourceRef

from app import config
from app.signals import (
    HTTP_REQUESTS,
)

from ..queries import PROMETHEUS_OTEL_NAMES, Pipelines, PromNames, PullQueries, matches
from ..settings import GRAFANA_DATASOURCES_YML, prometheus_scrape_seconds, statsd_flush_seconds
from .panels import Steps, stat_panel, timeseries_panel
from .sdk import GraphiteQuery

# The provisioned datasources, whose fixed uids the panels name.
DATASOURCES = GRAFANA_DATASOURCES_YML
# The scrape's Prometheus, by the pull dashboards' `datasource` variable (build.datasource_variable):
# the provisioned one, uid SCRAPE_UID, unless a user picks another that holds the same series (in the
# HA overlay, replica b or the long-term store).
SCRAPE_UID = "prometheus"
SCRAPE_VARIABLE = "datasource"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${" + SCRAPE_VARIABLE + "}")
# The same, on a dashboard with no such variable (the push dashboards' marks of the scraped faults).
PROVISIONED_PROMETHEUS = DataSourceRef(type_val="prometheus", uid=SCRAPE_UID)
# The OTLP push, read with PromQL from wherever it is received (in compose, the same Prometheus).
OTEL = DataSourceRef(type_val="prometheus", uid="otel")
GRAPHITE = DataSourceRef(type_val="graphite", uid="graphite")
ALERTMANAGER = DataSourceRef(type_val="alertmanager", uid="alertmanager")


RATE = "$__rate_interval"
# Each pipeline's queries with Grafana's variables in their place ($instance, $prefix, $__rate_interval).
GRAFANA = Pipelines.of_grafana()


# How often each backend gets new data: from the files the stack runs with, and the app's default
# OTEL_METRIC_EXPORT_INTERVAL (ms), as the otel datasource's timeInterval has it.
SCRAPE, FLUSH = prometheus_scrape_seconds(), statsd_flush_seconds()
EXPORT = config.DEFAULTS["OTEL_METRIC_EXPORT_INTERVAL"] / 1000


def label(name: str) -> str:
    """A legend that shows the series' `name` label."""
    return "{{" + name + "}}"


def promql(datasource: DataSourceRef, expr: str, legend: str) -> prometheus.Dataquery:
    """A PromQL query of a time series panel, its legend."""
    return prometheus.Dataquery().datasource(datasource).expr(expr).legend_format(legend).range()


@dataclass(frozen=True)
class PromPipeline:
    """A pipeline Grafana reads with PromQL, the scrape or the OTLP push: the panels of a signal take one."""

    name: str  # in panel titles
    datasource: DataSourceRef
    queries: PullQueries
    source: str  # how its numbers are made
    counted: str  # where its request count comes from
    gauged: str  # how its in-flight and capacity gauges are read

    @property
    def names(self) -> PromNames:
        return self.queries.names

    @property
    def routes(self) -> str:
        """The `route` variable as a matcher on this pipeline's route label (the values agree)."""
        return matches(self.names.route, "$route")

    def query(self, expr: str, legend: str) -> prometheus.Dataquery:
        return promql(self.datasource, expr, legend)

    def panel(
        self, title: str, description: str, unit: str, *queries: prometheus.Dataquery
    ) -> timeseries.Panel:
        return timeseries_panel(title, description, unit, self.datasource, *queries)

    def stat(
        self, title: str, description: str, unit: str, steps: Steps, *queries: prometheus.Dataquery
    ) -> stat.Panel:
        return stat_panel(title, description, unit, self.datasource, steps, *queries)


# Every series of the scrape is filtered by the `instance` variable (one replica under
# `docker compose up --scale app=3`), and by `route` where it has one.
SCRAPED = PromPipeline(
    "scrape",
    PROMETHEUS,
    GRAFANA.pull,
    f"Scrape: Prometheus scrapes /metrics every {SCRAPE:g} s and keeps every scrape; the app sums its live "
    "workers and an archive of the dead ones, so a recycled worker's counts stay counted.",
    f"rate() of the {HTTP_REQUESTS.name} counter",
    "both summed over the live workers by the app at each scrape",
)
# No instance filter on the OTLP push: its instances are the workers' service.instance.id, random
# and new with every recycled worker, not replicas a user could pick (the resource names no host).
OTLP = PromPipeline(
    "OTLP",
    OTEL,
    GRAFANA.otel,
    f"OTLP push: each gunicorn worker's OpenTelemetry SDK pushes its cumulative totals every {EXPORT:g} s, "
    "one series per worker (instance = its service.instance.id); a recycled worker's replacement starts "
    "new series, and a pushed series gets no staleness marker.",
    f"rate() of {PROMETHEUS_OTEL_NAMES.requests}: the request duration histogram's count is the "
    "request count (the OTLP push has no counter of its own)",
    "each worker's last push within the rate interval (last_over_time), summed: a pushed series gets no "
    "staleness marker, so an exited worker's gauges drop out only once that interval has passed",
)
# StatsD names under the `prefix` variable (STATSD_PREFIX), filtered by `endpoint`.
STATSD = GRAFANA.push
STATSD_SOURCE = (
    "StatsD push: every request sends one StatsD datagram; StatsD aggregates and flushes to Graphite every "
    f"{FLUSH:g} s."
)


# The scrape's fault gauges on a dashboard with no instance variable: those of every replica.
EVERY_INSTANCE = PullQueries(window=RATE)


def graphite(target: str) -> GraphiteQuery:
    return GraphiteQuery().datasource(GRAPHITE).target(target)


STATSD_HAS_NO_INSTANCE = (
    "Every app replica pushes the same names, so StatsD merges them into one series: StatsD has no instance."
)


def statsd_panel(title: str, description: str, unit: str, *queries: GraphiteQuery) -> timeseries.Panel:
    return timeseries_panel(title, f"{description} {STATSD_HAS_NO_INSTANCE}", unit, GRAPHITE, *queries)


def statsd_stat(title: str, description: str, unit: str, steps: Steps, *queries: GraphiteQuery) -> stat.Panel:
    return stat_panel(title, f"{description} {STATSD_HAS_NO_INSTANCE}", unit, GRAPHITE, steps, *queries)
