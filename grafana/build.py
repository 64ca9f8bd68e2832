"""Generate the lab's Grafana dashboards (grafana/dashboards/*.json) with grafana-foundation-sdk.

    python grafana/build.py           # write the JSON files
    python grafana/build.py --check   # exit 1 if a committed file differs from what this writes

The JSON is what Grafana provisions (grafana/provisioning/dashboards/dashboards.yml);
tests/test_dashboards.py checks that regenerating gives exactly the committed files.
Each signal is written once, as a panel function, and reused by the dashboards; the
PromQL ones take the pipeline they read (PromPipeline: the scrape, or the OTLP push).
The SDK has no Graphite query: graphite_query.py, next to this file, is that piece.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common, dashboard, prometheus, text, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import text as text_models
from grafana_foundation_sdk.models.common import DataSourceRef
from graphite_query import GraphiteQuery

from app import config
from app.signals import (
    DB_QUERY_DURATION,
    HTTP_CAPACITY,
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    STATSD_PREFIX,
)
from lab.native_config import prometheus_scrape_seconds, statsd_flush_seconds
from lab.queries import PROMETHEUS_OTEL_NAMES, OtelQueries, PromNames, PullQueries, PushQueries, is_, matches

OUT = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
# The OTLP push, read with PromQL from wherever it is received (in compose, the same Prometheus).
OTEL = DataSourceRef(type_val="prometheus", uid="otel")
GRAPHITE = DataSourceRef(type_val="graphite", uid="graphite")
TAG = "observability-lab"
RATE = "$__rate_interval"
PANEL_HEIGHT = 8
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


Rows = list[tuple[str, list[timeseries.Panel]]]  # (row title, its panels left to right)
SYMPTOMS_AND_CAUSES = "Symptoms and causes"


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dashboard.QueryVariable],
    rows: Rows,
    top: text.Panel | None = None,
) -> dashboard_models.Dashboard:
    """A dashboard of rows, each row's panels side by side in equal widths; panel ids in order."""
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
    )
    if top is not None:
        board.with_panel(top)
    for row_title, panels in rows:
        board.with_row(dashboard.Row(row_title))  # the SDK lays panels out left to right below it
        for panel in panels:
            board.with_panel(panel.span(24 // len(panels)))
    built = board.build()
    for i, panel in enumerate(built.panels, start=1):
        panel.id_val = i
    return built


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


def dashboards() -> dict[str, dashboard_models.Dashboard]:
    """File name -> dashboard."""
    return {
        "golden-signals-prometheus.json": build_dashboard(
            "golden-signals-prometheus",
            "Golden signals: pull (Prometheus)",
            "The Four Golden Signals of the app as Prometheus scrapes them, per route and instance. "
            f"{SCRAPED.source}",
            [instance_variable(), route_variable(SCRAPED)],
            golden_signal_rows(SCRAPED, worker_latency()),
        ),
        "golden-signals-otlp.json": build_dashboard(
            "golden-signals-otlp",
            "Golden signals: OTLP push (OpenTelemetry)",
            "The Four Golden Signals of the app as its OpenTelemetry SDK pushes them over OTLP, per route. "
            f"{OTLP.source} No instance variable: the instances are workers, with random ids that every "
            "recycle replaces.",
            [route_variable(OTLP)],
            golden_signal_rows(OTLP),
        ),
        "golden-signals-graphite.json": build_dashboard(
            "golden-signals-graphite",
            "Golden signals: push (StatsD / Graphite)",
            "The Four Golden Signals of the app as StatsD pushes them to Graphite, per endpoint. "
            f"{STATSD_SOURCE}",
            [prefix_variable(), endpoint_variable()],
            [
                ("Latency", [statsd_latency()]),
                ("Traffic", [statsd_traffic()]),
                ("Errors", [statsd_errors()]),
                ("Saturation", [statsd_saturation()]),
                (SYMPTOMS_AND_CAUSES, [statsd_database_symptom(), statsd_database_cause()]),
            ],
        ),
        "pull-vs-push.json": build_dashboard(
            "pull-vs-push",
            "Pull vs push: scrape, OTLP, StatsD",
            "Each golden signal of the same requests three ways: scraped by Prometheus (left), pushed over "
            f"OTLP (middle), pushed through StatsD to Graphite (right). {SCRAPED.source} {OTLP.source} "
            f"{STATSD_SOURCE}",
            [instance_variable(), route_variable(SCRAPED), prefix_variable(), endpoint_variable()],
            three_way_rows(),
            top=guide(),
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
