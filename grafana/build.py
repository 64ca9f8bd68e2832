"""Generate the lab's Grafana dashboards (grafana/dashboards/*.json) with grafana-foundation-sdk.

    python grafana/build.py           # write the JSON files
    python grafana/build.py --check   # exit 1 if a committed file differs from what this writes

The JSON is what Grafana provisions (grafana/provisioning/dashboards/dashboards.yml);
tests/test_dashboards.py checks that regenerating gives exactly the committed files.
Each signal is written once, as a panel function, and reused by the dashboards; the
PromQL ones take the pipeline they read (PromPipeline: the scrape, or the OTLP push).
Every dashboard opens on what is wrong now: a stat per signal and pipeline, the SLOs'
error budget and burn rate (where Prometheus is read), the alerts, and marks of each
injected fault's changes. Their thresholds come from the alerting rules
(prometheus_rules.py reads prometheus/rules/), so red means an alert's threshold.
The SDK has no Graphite query and no annotation with a datasource query:
graphite_query.py and annotation_query.py, next to this file, are those pieces.
"""

import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import prometheus_rules
import yaml
from annotation_query import AnnotationQuery
from flask import Flask
from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, text, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import text as text_models
from grafana_foundation_sdk.models.common import DataSourceRef
from graphite_query import GraphiteQuery
from prometheus_rules import SLO_WINDOW, Slo

from app import config, views
from app.signals import (
    DB_QUERY_DURATION,
    HTTP_CAPACITY,
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    LAB_FAULT_ERROR_RATIO,
    LAB_FAULT_LATENCY,
    ROUTE,
    STATSD_PREFIX,
    Metric,
)
from lab.native_config import prometheus_scrape_seconds, statsd_flush_seconds
from lab.queries import PROMETHEUS_OTEL_NAMES, OtelQueries, PromNames, PullQueries, PushQueries, is_, matches

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCES = Path(__file__).resolve().parent / "provisioning" / "datasources" / "datasources.yml"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
# The OTLP push, read with PromQL from wherever it is received (in compose, the same Prometheus).
OTEL = DataSourceRef(type_val="prometheus", uid="otel")
GRAPHITE = DataSourceRef(type_val="graphite", uid="graphite")
ALERTMANAGER = DataSourceRef(type_val="alertmanager", uid="alertmanager")
TAG = "observability-lab"
RATE = "$__rate_interval"
PANEL_HEIGHT, STAT_HEIGHT, ALERT_LIST_HEIGHT = 8, 4, 7
# Panels side by side at most: more wrap, so the twelve stats of pull-vs-push make, under each
# pipeline's column, a block of 2 x 2.
PER_LINE = 6
Steps = list[tuple[float, str]]  # (from this value up, its color), above a stat's base color
# How often each backend gets new data: from the files the stack runs with, and the app's default
# OTEL_METRIC_EXPORT_INTERVAL (ms), as the otel datasource's timeInterval has it.
SCRAPE, FLUSH = prometheus_scrape_seconds(), statsd_flush_seconds()
EXPORT = config.DEFAULTS["OTEL_METRIC_EXPORT_INTERVAL"] / 1000


def label(name: str) -> str:
    """A legend that shows the series' `name` label."""
    return "{{" + name + "}}"


# -- pipelines ------------------------------------------------------------------------------------


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
        return prometheus.Dataquery().datasource(self.datasource).expr(expr).legend_format(legend).range()

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
    PullQueries(scope=(matches("instance", "$instance"),), window=RATE),
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
    OtelQueries(window=RATE),
    f"OTLP push: each gunicorn worker's OpenTelemetry SDK pushes its cumulative totals every {EXPORT:g} s, "
    "one series per worker (instance = its service.instance.id); a recycled worker's replacement starts "
    "new series, and a pushed series gets no staleness marker.",
    f"rate() of {PROMETHEUS_OTEL_NAMES.requests}: the request duration histogram's count is the "
    "request count (the OTLP push has no counter of its own)",
    "each worker's last push within the rate interval (last_over_time), summed: a pushed series gets no "
    "staleness marker, so an exited worker's gauges drop out only once that interval has passed",
)
# StatsD names under the `prefix` variable (STATSD_PREFIX), filtered by `endpoint`.
STATSD = PushQueries(prefix="$prefix")
STATSD_SOURCE = (
    "StatsD push: every request sends one StatsD datagram; StatsD aggregates and flushes to Graphite every "
    f"{FLUSH:g} s."
)


# The scrape's fault gauges on a dashboard with no instance variable: those of every replica.
EVERY_INSTANCE = PullQueries(window=RATE)


def graphite(target: str) -> GraphiteQuery:
    return GraphiteQuery().datasource(GRAPHITE).target(target)


# -- panels ---------------------------------------------------------------------------------------


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    datasource: DataSourceRef,
    *queries: prometheus.Dataquery | GraphiteQuery,
) -> timeseries.Panel:
    """A time series panel on one datasource, its queries A, B, ..."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .unit(unit)
        .min(0)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
        .height(PANEL_HEIGHT)
    )
    return with_queries(panel, queries)


Panel = typing.TypeVar("Panel", timeseries.Panel, stat.Panel)


def with_queries(panel: Panel, queries: typing.Iterable[prometheus.Dataquery | GraphiteQuery]) -> Panel:
    """The panel with the queries as its targets A, B, ..."""
    for i, query in enumerate(queries):
        panel.with_target(query.ref_id(chr(ord("A") + i)))
    return panel


STATSD_HAS_NO_INSTANCE = (
    "Every app replica pushes the same names, so StatsD merges them into one series: StatsD has no instance."
)


def statsd_panel(title: str, description: str, unit: str, *queries: GraphiteQuery) -> timeseries.Panel:
    return timeseries_panel(title, f"{description} {STATSD_HAS_NO_INSTANCE}", unit, GRAPHITE, *queries)


def latency(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Latency p50 / p95 / p99 ({p.name})",
        "How long requests take, per route. Percentiles computed at query time by histogram_quantile over "
        f"the rate of the {p.names.duration.name} buckets, so they add up over workers, replicas and any "
        "time window. Read p99 for the slowest users, p50 for the typical one.",
        "s",
        *(
            p.query(
                p.queries.latency(q, p.routes, by=p.names.route), f"p{round(q * 100)} {label(p.names.route)}"
            )
            for q in (0.5, 0.95, 0.99)
        ),
    )


def traffic(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Traffic ({p.name})",
        "Requests per second answered, per route (every status, 404 and 500 included): the demand on the "
        f"service, from {p.counted}.",
        "reqps",
        p.query(p.queries.traffic(p.routes, by=p.names.route), label(p.names.route)),
    )


def errors(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Errors: 5xx and 4xx ratio ({p.name})",
        "Share of requests answered with a 5xx (the service failed: counts against the availability SLO) "
        "and with a 4xx (the client asked for something wrong: a spike can still mean a broken link or "
        "client). 0 % is healthy.",
        "percentunit",
        p.query(p.queries.error_ratio(p.routes, status="5.."), "5xx"),
        p.query(p.queries.error_ratio(p.routes, status="4.."), "4xx"),
    )


def saturation(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Saturation: busy workers ({p.name})",
        f"Requests in flight over capacity (gunicorn workers x threads), {p.gauged}. Near 100 % new requests "
        "wait in the queue and latency climbs.",
        "percentunit",
        p.query(p.queries.saturation(), "in flight / capacity"),
    )


def worker_latency() -> timeseries.Panel:
    return SCRAPED.panel(
        "Worker: mean processing time",
        "The post's non-web worker: mean time of its request_processing_seconds Summary, rate(_sum) / "
        "rate(_count). A Summary has no buckets: this mean (or its client-side quantiles) is all it gives. "
        "The worker is not an app replica: the instance variable does not apply.",
        "s",
        SCRAPED.query(SCRAPED.queries.blog_worker_mean(), "mean"),
    )


def database_symptom(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Symptom: /database/ latency p95 ({p.name})",
        "What users of /database/ feel: the 95th percentile of the route's request duration. Compare with "
        "the cause next to it: when both move together, the database is the reason.",
        "s",
        p.query(p.queries.latency(0.95, is_(p.names.route, "/database/")), "/database/ p95"),
    )


def database_cause(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Cause: database query p95 ({p.name})",
        "Time spent in the (simulated) database, 95th percentile per operation, from "
        f"{p.names.db_duration.name}. The gap to the /database/ latency is the time spent outside the query.",
        "s",
        p.query(p.queries.db_latency(0.95), f"{label(p.names.db_operation)} p95"),
    )


def statsd_latency() -> timeseries.Panel:
    return statsd_panel(
        "Latency mean / upper_90 / max (StatsD)",
        "How long requests take, per endpoint and method, in ms. StatsD computes mean, 90th percentile "
        "(upper_90) and max (upper) from the raw timings of each flush, per series.",
        "ms",
        graphite(STATSD.latency("$endpoint")),
    )


def statsd_traffic() -> timeseries.Panel:
    return statsd_panel(
        "Traffic (StatsD)",
        "Requests per second, per endpoint: StatsD's per-second counters (stats.*) of every method and "
        "status, summed by endpoint with groupByNode.",
        "reqps",
        graphite(STATSD.traffic("$endpoint")),
    )


def statsd_errors() -> timeseries.Panel:
    return statsd_panel(
        "Errors: 5xx and 4xx percent (StatsD)",
        "Percent of requests answered with a 5xx (service failures) and a 4xx (client errors): asPercent "
        "of the status counters over all counters. 0 % is healthy.",
        "percent",
        graphite(STATSD.error_percent("$endpoint", "5*", "5xx")),
        graphite(STATSD.error_percent("$endpoint", "4*", "4xx")),
    )


def statsd_saturation() -> timeseries.Panel:
    return statsd_panel(
        "Saturation: requests in flight (StatsD)",
        "Requests being answered now: a StatsD gauge every worker changes by deltas, so the workers add up. "
        "A count, not a ratio: StatsD knows nothing of capacity, so compare it with workers x threads.",
        "short",
        graphite(STATSD.in_flight()),
    )


def statsd_database_symptom() -> timeseries.Panel:
    return statsd_panel(
        "Symptom: /database/ latency upper_90 (StatsD)",
        "What users of /database/ feel: the 90th percentile of the endpoint's timings in each flush, in ms.",
        "ms",
        graphite(STATSD.latency("database", "upper_90")),
    )


def statsd_database_cause() -> timeseries.Panel:
    return statsd_panel(
        "Cause: database query upper_90 (StatsD)",
        "Time spent in the (simulated) database select, 90th percentile of each flush, in ms. When it moves "
        "with the /database/ latency next to it, the database is the reason.",
        "ms",
        graphite(f"alias({STATSD.db_timer('select', 'upper_90')}, 'select upper_90')"),
    )


# What differs between the three views of one signal: said once, under each of them.
COMPARED = "Scrape vs OTLP vs StatsD:"
DIFFERENCES = {
    "latency": f"{COMPARED} the scrape and the OTLP push carry histograms with the same bucket edges (0.3, "
    "1, 2, 3 s among them): histogram_quantile re-aggregates them over workers, replicas and any window, "
    f"and the two agree but for when the buckets were read (a scrape every {SCRAPE:g} s, each worker's push "
    f"every {EXPORT:g} s). StatsD's upper_90 is exact, but per {FLUSH:g} s flush: it cannot be averaged or "
    "summed into a correct percentile over time or hosts.",
    "traffic": f"{COMPARED} the scrape samples a counter every {SCRAPE:g} s: a missed scrape loses "
    f"resolution, not requests. Each worker pushes its cumulative count every {EXPORT:g} s: a failed push "
    "loses resolution too (the next one carries the total), but every recycled worker starts new series, "
    "and rate() sees no increase before a series' first push, so a recycle can hide some of the new "
    f"worker's first requests. StatsD counts every request as a UDP datagram, in {FLUSH:g} s flushes: a "
    "lost datagram is a lost request, and the line moves in flush steps, up to one flush late.",
    "errors": f"{COMPARED} the same requests, counted three times. The two Prometheus ratios are over the "
    "rate interval (a few scrapes, or a few pushes of each worker), Graphite's per flush: the StatsD line "
    f"is spikier. Each shows an error up to one interval late: a scrape ({SCRAPE:g} s), an export "
    f"({EXPORT:g} s), a flush ({FLUSH:g} s).",
    "saturation": f"{COMPARED} the scrape reads in flight and capacity of the live workers at each scrape. "
    f"Each worker pushes both every {EXPORT:g} s, and its series get no staleness marker when it exits: "
    "the OTLP view sums each worker's last push within the rate interval, so an exited worker's capacity "
    f"still counts for up to that interval. The StatsD gauge is sampled by each worker every second and "
    f"flushed every {FLUSH:g} s, and has no capacity. A burst shorter than the sampling interval is "
    "invisible to all three.",
    "causes": f"{COMPARED} the same comparison from three sides: p95 from buckets (seconds) for the scrape "
    "and the OTLP push, per-flush upper_90 (ms) for StatsD; each tells whether the database explains the "
    "route's latency.",
}


def explained(panel: timeseries.Panel, signal: str) -> timeseries.Panel:
    """Append to the panel's description what differs between the three views of its signal."""
    return panel.description(f"{panel.build().description} {DIFFERENCES[signal]}")


# -- at a glance: the signals now, the SLOs, the alerts, the faults ------------------------------

SLOS = prometheus_rules.slos()
AVAILABILITY = next(slo for slo in SLOS if slo.name == "availability")
# Where the symptom alerts fire (prometheus/rules/alerts.yml).
ERRORS_ALERTED = prometheus_rules.threshold("HighErrorRatio")
SATURATED = prometheus_rules.threshold("Saturation")
SLOW, SLOW_ROUTES = prometheus_rules.route_thresholds("HighLatency")
BURN_UNIT = "suffix:×"


def percent(ratio: float) -> str:
    return f"{ratio * 100:g} %"


def error_steps(scale: float = 1) -> Steps:
    """The error ratio's colors (`scale` 100 for a percent), at the rates the alerts fire at."""
    budget = AVAILABILITY.budget * scale
    return [
        (AVAILABILITY.ticket_burn * budget, "yellow"),
        (ERRORS_ALERTED * scale, "orange"),
        (AVAILABILITY.page_burn * budget, "red"),
    ]


ERROR_COLORS = (
    f"Yellow from {percent(AVAILABILITY.ticket_burn * AVAILABILITY.budget)}: the availability SLO's "
    f"budget ({percent(AVAILABILITY.budget)} of requests) burns at {AVAILABILITY.ticket_burn:g}x, the "
    f"slow-burn ticket's rate; orange from {percent(ERRORS_ALERTED)}, where HighErrorRatio fires (on a route "
    f"other than /error/); red from {percent(AVAILABILITY.page_burn * AVAILABILITY.budget)}, the fast-burn "
    f"page's {AVAILABILITY.page_burn:g}x. The numbers are the alerts' (prometheus/rules/alerts.yml)."
)
LATENCY_COLORS = (
    f"Red above the latency the HighLatency alert allows a route: {SLOW * 1000:g} ms, "
    + ", ".join(f"{seconds:g} s for {route}" for route, seconds in SLOW_ROUTES.items())
    + " (the alert reads the p95 over 5 minutes: a red p99 is where it is heading)."
)


def thresholds(base: str, steps: Steps) -> dashboard.ThresholdsConfig:
    """The base color, and each step's color from its value up (rounded: 14.4 x 0.005 is 0.072)."""
    above = [dashboard_models.Threshold(round(value, 6), color) for value, color in sorted(steps)]
    return (
        dashboard.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(None, base), *above])
    )


def stat_panel(
    title: str,
    description: str,
    unit: str,
    datasource: DataSourceRef,
    steps: Steps,
    *queries: prometheus.Dataquery | GraphiteQuery,
    base: str = "green",
) -> stat.Panel:
    """The last value of each series, on its step's color; with no steps, no color: nothing to judge."""
    colored = common_models.BigValueColorMode.BACKGROUND if steps else common_models.BigValueColorMode.NONE
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource)
        .unit(unit)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .color_mode(colored)
        .thresholds(thresholds(base if steps else "text", steps))
        .height(STAT_HEIGHT)
    )
    return with_queries(panel, queries)


def slow_routes(panel: stat.Panel, name_of=lambda route: route, scale: float = 1) -> stat.Panel:
    """The latency stat with the routes HighLatency treats apart red at their own threshold."""
    for route, seconds in SLOW_ROUTES.items():
        red = thresholds("green", [(seconds * scale, "red")]).build()
        panel.override_by_name(name_of(route), [dashboard_models.DynamicConfigValue("thresholds", red)])
    return panel


def traffic_now(p: PromPipeline) -> stat.Panel:
    return p.stat(
        f"Traffic now ({p.name})",
        f"Requests per second answered now, over the routes chosen, from {p.counted}. No color: traffic "
        "gives the other signals their size, it is neither good nor bad.",
        "reqps",
        [],
        p.query(p.queries.traffic(p.routes), "requests/s"),
    )


def errors_now(p: PromPipeline) -> stat.Panel:
    return p.stat(
        f"Errors now: 5xx ratio ({p.name})",
        "Share of requests answered with a 5xx now, over the routes chosen (the load generator's /error/ "
        f"among them: its 500s count against the availability SLO). {ERROR_COLORS}",
        "percentunit",
        error_steps(),
        p.query(p.queries.error_ratio(p.routes), "5xx"),
    )


def latency_now(p: PromPipeline) -> stat.Panel:
    route = p.names.route
    return slow_routes(
        p.stat(
            f"Latency now: p99 ({p.name})",
            f"Each route's 99th percentile now, from the {p.names.duration.name} buckets. {LATENCY_COLORS}",
            "s",
            [(SLOW, "red")],
            p.query(p.queries.latency(0.99, p.routes, by=route), label(route)),
        )
    )


def saturation_now(p: PromPipeline) -> stat.Panel:
    return p.stat(
        f"Saturation now ({p.name})",
        f"Requests in flight over capacity (workers x threads), {p.gauged}. Red from {percent(SATURATED)}, "
        "where the Saturation alert fires: new requests queue.",
        "percentunit",
        [(SATURATED, "red")],
        p.query(p.queries.saturation(), "busy"),
    )


def stats(p: PromPipeline) -> list[stat.Panel]:
    """The pipeline's four signals now."""
    return [traffic_now(p), errors_now(p), latency_now(p), saturation_now(p)]


def statsd_stat(title: str, description: str, unit: str, steps: Steps, *queries: GraphiteQuery) -> stat.Panel:
    return stat_panel(title, f"{description} {STATSD_HAS_NO_INSTANCE}", unit, GRAPHITE, steps, *queries)


def statsd_endpoint(route: str) -> str:
    """The StatsD endpoint of one of the app's routes: the Flask endpoint of its URL rule."""
    app = Flask(__name__)
    views.init_app(app)
    (endpoint,) = {rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == route}
    return endpoint


def statsd_traffic_now() -> stat.Panel:
    return statsd_stat(
        "Traffic now (StatsD)",
        "Requests per second answered in the last flush, over the endpoints chosen. No color: traffic gives "
        "the other signals their size.",
        "reqps",
        [],
        graphite(f"alias(sumSeries({STATSD.requests('$endpoint')}), 'requests/s')"),
    )


def statsd_errors_now() -> stat.Panel:
    return statsd_stat(
        "Errors now: 5xx percent (StatsD)",
        "Percent of the last flush's requests answered with a 5xx, over the endpoints chosen. "
        f"{ERROR_COLORS}",
        "percent",
        error_steps(scale=100),
        graphite(STATSD.error_percent("$endpoint")),
    )


def statsd_latency_now() -> stat.Panel:
    latency = statsd_stat(
        "Latency now: upper_99 (StatsD)",
        "Each endpoint's 99th percentile of the last flush, in ms: the slowest of its methods' upper_99. "
        f"{LATENCY_COLORS}",
        "ms",
        [(SLOW * 1000, "red")],
        graphite(f"groupByNode({STATSD.timer('$endpoint', stat='upper_99')}, -3, 'maxSeries')"),
    )
    return slow_routes(latency, statsd_endpoint, scale=1000)


def statsd_saturation_now() -> stat.Panel:
    return statsd_stat(
        "Saturation now: in flight (StatsD)",
        "Requests being answered now. No color: StatsD knows no capacity, so a count cannot say how full the "
        "service is; the scrape and the OTLP push carry the ratio, and its red.",
        "short",
        [],
        graphite(STATSD.in_flight()),
    )


def statsd_stats() -> list[stat.Panel]:
    """StatsD's four signals now."""
    return [statsd_traffic_now(), statsd_errors_now(), statsd_latency_now(), statsd_saturation_now()]


def three_way_stats() -> list[stat.Panel]:
    """Each pipeline's four stats as a 2 x 2 block under its column: scrape, OTLP, StatsD."""
    blocks = (stats(SCRAPED), stats(OTLP), statsd_stats())
    return [panel for half in (slice(0, 2), slice(2, 4)) for block in blocks for panel in block[half]]


def slo_title(slo: Slo) -> str:
    return f"{slo.name.capitalize()} SLO {percent(1 - slo.budget)}"


def bad_requests(slo: Slo) -> str:
    """What the SLO counts against its budget, in words."""
    if slo.name == AVAILABILITY.name:
        return (
            "requests answered with a 5xx (the load generator's calls to /error/ among them: this budget "
            "burns even with no fault injected)"
        )
    return f"requests to {slo.matcher(ROUTE)} slower than {float(slo.matcher('le')) * 1000:g} ms"


def budget_left(slo: Slo) -> stat.Panel:
    ratio = slo.over(SLO_WINDOW)
    return stat_panel(
        f"{slo_title(slo)}: error budget left ({SLO_WINDOW})",
        f"The share of the error budget not yet spent over the SLO window: 1 - {ratio} / {slo.budget:g}, the "
        f"share of {bad_requests(slo)} over the last {SLO_WINDOW} over the share allowed. 100 % is nothing "
        f"spent; red below 0: the SLO is missed over the window. The window holds what Prometheus has: since "
        "the stack started, at most its retention (15 days unless set), so on a young stack the ratio so far "
        "stands for the whole window.",
        "percentunit",
        PROMETHEUS,
        [(0, "green")],
        SCRAPED.query(f"1 - {ratio} / {slo.budget:g}", slo.name),
        base="red",
    )


def burn_rate(slo: Slo, window: str) -> stat.Panel:
    return stat_panel(
        f"{slo_title(slo)}: burn rate ({window})",
        f"How fast the error budget burns: the share of {bad_requests(slo)} over the last {window}, over the "
        f"share allowed ({slo.budget:g}). At 1x the budget lasts the {SLO_WINDOW} window exactly: yellow "
        f"above; orange from {slo.ticket_burn:g}x, the slow-burn ticket's rate; red from {slo.page_burn:g}x, "
        f"the fast-burn page's, which pages once the {' and the '.join(slo.page_windows)} burn rates are "
        "both above it (prometheus/rules/alerts.yml).",
        BURN_UNIT,
        PROMETHEUS,
        [(1, "yellow"), (slo.ticket_burn, "orange"), (slo.page_burn, "red")],
        SCRAPED.query(f"{slo.over(window)} / {slo.budget:g}", slo.name),
    )


def slo_stats() -> list[stat.Panel]:
    """For each SLO, over the scrape: the budget left over its window, its burn rate on the page's windows."""
    return [
        panel
        for slo in SLOS
        for panel in (budget_left(slo), *(burn_rate(slo, window) for window in slo.page_windows))
    ]


def provisioned_name(uid: str) -> str:
    """The name of a provisioned datasource: what the alert list and Grafana's Alerting pages go by."""
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    (name,) = {datasource["name"] for datasource in provisioned if datasource["uid"] == uid}
    return name


def alert_list() -> dashboard.Panel:
    """The lab's alerts that fire or are pending, from the rules of the Prometheus that sends them on."""
    groups = f"/alerting/groups?alertmanager={provisioned_name(ALERTMANAGER.uid)}"
    return (
        dashboard.Panel()
        .type("alertlist")
        .title("Alerts firing and pending")
        .description(
            "The lab's alerts (prometheus/rules/alerts.yml) that fire or are pending, the most important "
            "first. Grafana lists alerting rules from a rules source, the Prometheus datasource here; that "
            "Prometheus sends what fires to Alertmanager, the datasource it names as its Alertmanager, which "
            "routes a page and a ticket to different receivers. Its alert groups and silences: the panel's "
            "link."
        )
        .options(
            {
                "viewMode": "list",
                "groupMode": "default",
                "groupBy": [],
                "maxItems": 20,
                "sortOrder": 3,  # importance: firing, then pending
                "dashboardAlerts": False,
                "alertName": "",
                "alertInstanceLabelFilter": "",
                "datasource": provisioned_name(PROMETHEUS.uid),
                "showInactiveAlerts": False,
                "stateFilter": {
                    "firing": True,
                    "pending": True,
                    "recovering": True,
                    "noData": False,
                    "normal": False,
                    "error": True,
                },
            }
        )
        .links(
            [
                dashboard.DashboardLink("Alertmanager: alert groups and silences")
                .type(dashboard_models.DashboardLinkType.LINK)
                .url(groups)
            ]
        )
        .height(ALERT_LIST_HEIGHT)
    )


def scraped_fault_changes(fault: str, gauge: Metric, by_route: str, color: str) -> AnnotationQuery:
    """Marks where the scraped fault gauge changed: the steps whose rate interval holds a change."""
    changed = f"changes(({by_route})[{RATE}:]) > 0"
    return (
        AnnotationQuery(f"{fault} changed (scrape)", PROMETHEUS, color)
        .query(prometheus.Dataquery().datasource(PROMETHEUS).expr(changed).ref_id("Anno"))
        .fields(
            titleFormat=f"{fault} changed on {label(ROUTE)} (scrape)",
            textFormat=f'{gauge.name}{{{ROUTE}="{label(ROUTE)}"}}, as Prometheus scraped it',
            tagKeys=ROUTE,
        )
    )


def statsd_fault_changes(fault: str, by_endpoint: str, color: str) -> AnnotationQuery:
    """Marks at the flushes where StatsD's fault gauge changed (changed() is 1 there, its 0s removed)."""
    changed = f"removeBelowValue(changed({by_endpoint}), 1)"
    titled = rf"aliasSub({changed}, '.*changed\((.+?)\).*', '{fault} changed on \1 (StatsD)')"
    return AnnotationQuery(f"{fault} changed (StatsD)", GRAPHITE, color).query(
        graphite(titled).for_annotations().ref_id("Anno")
    )


def fault_annotations(scraped: PullQueries) -> list[AnnotationQuery]:
    """Each injected fault's changes, as both backends saw them: the scrape's gauges, and StatsD's."""
    return [
        scraped_fault_changes("Error fault", LAB_FAULT_ERROR_RATIO, scraped.fault_error_ratio(), "red"),
        scraped_fault_changes("Latency fault", LAB_FAULT_LATENCY, scraped.fault_latency(), "purple"),
        statsd_fault_changes("Error fault", STATSD.fault_error_ratio(), "orange"),
        statsd_fault_changes("Latency fault", STATSD.fault_latency(), "blue"),
    ]


GUIDE = f"""\
The **Four Golden Signals** (Google SRE book, ch. 6 *Monitoring Distributed Systems*) and their series, \
three ways: scraped by Prometheus (datasource `prometheus`), pushed over OTLP (datasource `otel`: in \
compose the same Prometheus, which receives OTLP itself) and pushed through StatsD to Graphite. StatsD names \
start with the `prefix` variable (the app's STATSD_PREFIX, `{STATSD_PREFIX}` by default).

| signal | what it means | how to read it | scrape (pull) | OTLP (push) | StatsD (push) |
| --- | --- | --- | --- | --- | --- |
| **Latency** | time to answer a request | p99 for the slowest users, p50 for the typical one | \
`{HTTP_REQUEST_DURATION.name}` histogram: `histogram_quantile` over its `_bucket` rates, in s | \
`{OTLP.names.duration.name}` histogram, the same buckets, in s | \
`{STATSD.timer("<endpoint>", "<method>", "{mean,upper_90,upper}")}`, in ms per flush |
| **Traffic** | demand: requests per second | the baseline that gives the other three their size | \
`rate({HTTP_REQUESTS.name}[…])` | `rate({OTLP.names.requests}[…])`, the histogram's count | \
`{STATSD.requests("<endpoint>", "<method>", "<status>")}` (per second) |
| **Errors** | share of requests that fail | 5xx: the service failed (the availability SLO); 4xx: the \
client asked wrong; healthy is 0 % | `{HTTP_REQUESTS.name}{{{SCRAPED.names.status}=~"5.."}}` over all | \
`{OTLP.names.requests}{{{OTLP.names.status}=~"5.."}}` over all | \
`{STATSD.requests(status="5*")}` over `{STATSD.requests()}` (`asPercent`) |
| **Saturation** | how full the service is | near 100 % requests queue and latency climbs | \
`{HTTP_IN_FLIGHT.name}` / `{HTTP_CAPACITY.name}` | `{OTLP.names.in_flight}` / `{OTLP.names.capacity}`, \
each worker's last push | `{STATSD.in_flight_series()}` (a count: StatsD knows no capacity) |

**Symptoms and causes.** Alert on symptoms, what users feel (the four signals); debug with causes, what \
explains them. The last row sets the `/database/` latency (symptom) next to the time spent in the database \
(cause: `{DB_QUERY_DURATION.name}`, `{OTLP.names.db_duration.name}`, `{STATSD.db_timer("select", "*")}`). \
The `route` variable filters both Prometheus views (their route values agree). The `instance` variable picks \
app replicas of the scrape; the OTLP push's instances are workers (random ids, new with every recycle) and \
StatsD merges the replicas, so neither has an instance filter.
"""


def guide() -> text.Panel:
    return (
        text.Panel()
        .title("How to read this dashboard")
        .description(
            "The Four Golden Signals, what each means, and the series of the three pipelines that carry it."
        )
        .mode(text_models.TextMode.MARKDOWN)
        .content(GUIDE)
        .span(24)
        .height(13)
    )


# -- variables and dashboards ---------------------------------------------------------------------


def variable(name: str, datasource: DataSourceRef, query: str, all_value: str) -> dashboard.QueryVariable:
    """A multi-value query variable that starts on All (`all_value` then stands for every value)."""
    return (
        dashboard.QueryVariable(name)
        .label(name)
        .datasource(datasource)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(all_value)
        .current(dashboard_models.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
    )


def instance_variable() -> dashboard.QueryVariable:
    return variable("instance", PROMETHEUS, 'label_values(up{job="app"}, instance)', ".*")


def route_variable(p: PromPipeline) -> dashboard.QueryVariable:
    """The routes the pipeline has answered requests for."""
    return variable("route", p.datasource, f"label_values({p.names.requests}, {p.names.route})", ".*")


def endpoint_variable() -> dashboard.QueryVariable:
    return variable("endpoint", GRAPHITE, STATSD.endpoints(), "*")


def prefix_variable() -> dashboard.TextBoxVariable:
    """The StatsD prefix, a text box: set it to the app's STATSD_PREFIX (in the UI, or ?var-prefix=)."""
    return (
        dashboard.TextBoxVariable("prefix")
        .label("StatsD prefix")
        .description("The app's STATSD_PREFIX: every push series starts with it.")
        .default_value(STATSD_PREFIX)
        .current(dashboard_models.VariableOption(selected=True, text=STATSD_PREFIX, value=STATSD_PREFIX))
    )


Rows = list[tuple[str, list[cogbuilder.Builder[dashboard_models.Panel]]]]  # (row title, its panels)
SYMPTOMS_AND_CAUSES = "Symptoms and causes"
NOW, SLO_ROW, ALERTS = "Now", "SLOs: error budget and burn rate", "Alerts"


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dashboard.QueryVariable],
    rows: Rows,
    annotations: list[AnnotationQuery],
) -> dashboard_models.Dashboard:
    """A dashboard of rows, each row's panels side by side in equal widths (at most PER_LINE to a line);
    panel ids in order."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)  # the same moment in every panel
        .time("now-15m", "now")
        .refresh("10s")
        .timezone("browser")
        .variables(variables)
        .link(
            dashboard.DashboardLink("Lab dashboards")
            .type(dashboard_models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
        )
        .annotations(annotations)
    )
    for row_title, panels in rows:
        board.with_row(dashboard.Row(row_title))  # the SDK lays panels out left to right below it
        for panel in panels:
            board.with_panel(panel.span(24 // min(len(panels), PER_LINE)))
    built = board.build()
    for i, panel in enumerate(built.panels, start=1):
        panel.id_val = i
    return built


def glance_rows(now: list[stat.Panel], slos: bool) -> Rows:
    """What is wrong now: the signals, the SLOs (where the dashboard reads the scrape), the alerts."""
    return [(NOW, now), *([(SLO_ROW, slo_stats())] if slos else []), (ALERTS, [alert_list()])]


def golden_signal_rows(p: PromPipeline, *beside_latency: timeseries.Panel) -> Rows:
    """One PromQL pipeline's dashboard: a row per signal, then the database symptom next to its cause."""
    return [
        ("Latency", [latency(p), *beside_latency]),
        ("Traffic", [traffic(p)]),
        ("Errors", [errors(p)]),
        ("Saturation", [saturation(p)]),
        (SYMPTOMS_AND_CAUSES, [database_symptom(p), database_cause(p)]),
    ]


def three_way_rows() -> Rows:
    """Each signal's scrape, OTLP and StatsD views side by side, each saying how the three differ."""
    signals = (
        ("latency", latency, statsd_latency),
        ("traffic", traffic, statsd_traffic),
        ("errors", errors, statsd_errors),
        ("saturation", saturation, statsd_saturation),
    )
    causes = (
        database_symptom(SCRAPED),
        database_cause(SCRAPED),
        database_symptom(OTLP),
        database_cause(OTLP),
        statsd_database_symptom(),
        statsd_database_cause(),
    )
    return [
        (
            signal.capitalize(),
            [explained(panel, signal) for panel in (promql(SCRAPED), promql(OTLP), statsd())],
        )
        for signal, promql, statsd in signals
    ] + [(SYMPTOMS_AND_CAUSES, [explained(panel, "causes") for panel in causes])]


# Said under every dashboard's title: what its top rows and its marks are.
AT_A_GLANCE = (
    "It opens on what is wrong now (each signal's stat, colored where an alert fires; the SLOs' error "
    "budget and burn rate where it reads the scrape; the alerts), and marks each change of an injected "
    "fault (`lab faults`) as both backends saw it: the scrape's fault gauges and StatsD's."
)
GUIDE_ROW = "The golden signals, three ways"


def dashboards() -> dict[str, dashboard_models.Dashboard]:
    """File name -> dashboard."""
    return {
        "golden-signals-prometheus.json": build_dashboard(
            "golden-signals-prometheus",
            "Golden signals: pull (Prometheus)",
            "The Four Golden Signals of the app as Prometheus scrapes them, per route and instance. "
            f"{SCRAPED.source} {AT_A_GLANCE}",
            [instance_variable(), route_variable(SCRAPED), prefix_variable()],
            glance_rows(stats(SCRAPED), slos=True) + golden_signal_rows(SCRAPED, worker_latency()),
            fault_annotations(SCRAPED.queries),
        ),
        "golden-signals-otlp.json": build_dashboard(
            "golden-signals-otlp",
            "Golden signals: OTLP push (OpenTelemetry)",
            "The Four Golden Signals of the app as its OpenTelemetry SDK pushes them over OTLP, per route. "
            f"{OTLP.source} No instance variable: the instances are workers, with random ids that every "
            f"recycle replaces. {AT_A_GLANCE}",
            [route_variable(OTLP), prefix_variable()],
            glance_rows(stats(OTLP), slos=False) + golden_signal_rows(OTLP),
            fault_annotations(EVERY_INSTANCE),
        ),
        "golden-signals-graphite.json": build_dashboard(
            "golden-signals-graphite",
            "Golden signals: push (StatsD / Graphite)",
            "The Four Golden Signals of the app as StatsD pushes them to Graphite, per endpoint. "
            f"{STATSD_SOURCE} {AT_A_GLANCE}",
            [prefix_variable(), endpoint_variable()],
            glance_rows(statsd_stats(), slos=False)
            + [
                ("Latency", [statsd_latency()]),
                ("Traffic", [statsd_traffic()]),
                ("Errors", [statsd_errors()]),
                ("Saturation", [statsd_saturation()]),
                (SYMPTOMS_AND_CAUSES, [statsd_database_symptom(), statsd_database_cause()]),
            ],
            fault_annotations(EVERY_INSTANCE),
        ),
        "pull-vs-push.json": build_dashboard(
            "pull-vs-push",
            "Pull vs push: scrape, OTLP, StatsD",
            "Each golden signal of the same requests three ways: scraped by Prometheus (left), pushed over "
            f"OTLP (middle), pushed through StatsD to Graphite (right). {SCRAPED.source} {OTLP.source} "
            f"{STATSD_SOURCE} {AT_A_GLANCE}",
            [instance_variable(), route_variable(SCRAPED), prefix_variable(), endpoint_variable()],
            glance_rows(three_way_stats(), slos=True) + [(GUIDE_ROW, [guide()])] + three_way_rows(),
            fault_annotations(SCRAPED.queries),
        ),
    }


def render(board: dashboard_models.Dashboard) -> str:
    return json.dumps(board, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, board in dashboards().items():
        path, rendered = OUT / name, render(board)
        if check:
            if not path.exists() or path.read_text() != rendered:
                stale.append(name)
        else:
            path.write_text(rendered)
    if stale:
        print(f"out of date (run python grafana/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
