"""Generate the lab's Grafana dashboards (grafana/dashboards/*.json) with grafana-foundation-sdk.

    python grafana/build.py           # write the JSON files
    python grafana/build.py --check   # exit 1 if a committed file differs from what this writes

The JSON is what Grafana provisions (grafana/provisioning/dashboards/dashboards.yml);
tests/test_dashboards.py checks that regenerating gives exactly the committed files.
Each signal is written once, as a panel function, and reused by the dashboards. The
SDK has no Graphite query: graphite_query.py, next to this file, is that piece.
"""

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common, dashboard, prometheus, text, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import text as text_models
from grafana_foundation_sdk.models.common import DataSourceRef
from graphite_query import GraphiteQuery

from app.signals import (
    DB_QUERY_DURATION,
    HTTP_CAPACITY,
    HTTP_IN_FLIGHT,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    ROUTE,
    STATSD_PREFIX,
)
from lab.native_config import prometheus_scrape_seconds, statsd_flush_seconds
from lab.queries import PullQueries, PushQueries, is_, matches

OUT = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
GRAPHITE = DataSourceRef(type_val="graphite", uid="graphite")
TAG = "observability-lab"
RATE = "$__rate_interval"
PANEL_HEIGHT = 8


# -- query targets --------------------------------------------------------------------------------


def promql(expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().datasource(PROMETHEUS).expr(expr).legend_format(legend).range()


def graphite(target: str) -> GraphiteQuery:
    return GraphiteQuery().datasource(GRAPHITE).target(target)


# Pull (Prometheus): every series of the app is filtered by the `instance` variable (one replica
# under `docker compose up --scale app=3`), and by `route` where it has one.
PULL = PullQueries(scope=(matches("instance", "$instance"),), window=RATE)
ROUTES = matches(ROUTE, "$route")
# Push (Graphite): StatsD names under the `prefix` variable (STATSD_PREFIX), filtered by `endpoint`.
PUSH = PushQueries(prefix="$prefix")
# How often each backend gets new data, from the files the stack runs with.
SCRAPE, FLUSH = prometheus_scrape_seconds(), statsd_flush_seconds()


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


def pull_panel(title: str, description: str, unit: str, *queries: prometheus.Dataquery) -> timeseries.Panel:
    return timeseries_panel(title, description, unit, PROMETHEUS, *queries)


PUSH_HAS_NO_INSTANCE = (
    "Every app replica pushes the same names, so StatsD merges them into one series: push has no instance."
)


def push_panel(title: str, description: str, unit: str, *queries: GraphiteQuery) -> timeseries.Panel:
    return timeseries_panel(title, f"{description} {PUSH_HAS_NO_INSTANCE}", unit, GRAPHITE, *queries)


PULL_SOURCE = f"Pull: Prometheus scrapes /metrics every {SCRAPE:g} s and keeps every scrape."
PUSH_SOURCE = (
    "Push: every request sends one StatsD datagram; StatsD aggregates and flushes to Graphite every "
    f"{FLUSH:g} s."
)


def pull_latency() -> timeseries.Panel:
    return pull_panel(
        "Latency p50 / p95 / p99 (pull)",
        "How long requests take, per route. Percentiles computed at query time by histogram_quantile over "
        "the rate of the http_request_duration_seconds buckets, so they add up over workers, replicas and "
        "any time window. Read p99 for the slowest users, p50 for the typical one.",
        "s",
        *(
            promql(PULL.latency(q, ROUTES, by=ROUTE), f"p{round(q * 100)} {{{{route}}}}")
            for q in (0.5, 0.95, 0.99)
        ),
    )


def pull_traffic() -> timeseries.Panel:
    return pull_panel(
        "Traffic (pull)",
        "Requests per second answered, per route (every status, 404 and 500 included): the demand on the "
        "service. rate() of the http_requests_total counter.",
        "reqps",
        promql(PULL.traffic(ROUTES, by=ROUTE), "{{route}}"),
    )


def pull_errors() -> timeseries.Panel:
    return pull_panel(
        "Errors: 5xx and 4xx ratio (pull)",
        "Share of requests answered with a 5xx (the service failed: counts against the availability SLO) "
        "and with a 4xx (the client asked for something wrong: a spike can still mean a broken link or "
        "client). 0 % is healthy.",
        "percentunit",
        promql(PULL.error_ratio(ROUTES, status="5.."), "5xx"),
        promql(PULL.error_ratio(ROUTES, status="4.."), "4xx"),
    )


def pull_saturation() -> timeseries.Panel:
    return pull_panel(
        "Saturation: busy workers (pull)",
        "Requests in flight over capacity (gunicorn workers x threads, both live sums over the workers). "
        "Near 100 % new requests wait in the queue and latency climbs.",
        "percentunit",
        promql(PULL.saturation(), "in flight / capacity"),
    )


def worker_latency() -> timeseries.Panel:
    return pull_panel(
        "Worker: mean processing time",
        "The post's non-web worker: mean time of its request_processing_seconds Summary, rate(_sum) / "
        "rate(_count). A Summary has no buckets: this mean (or its client-side quantiles) is all it gives. "
        "The worker is not an app replica: the instance variable does not apply.",
        "s",
        promql(PULL.blog_worker_mean(), "mean"),
    )


def pull_database_symptom() -> timeseries.Panel:
    return pull_panel(
        "Symptom: /database/ latency p95 (pull)",
        "What users of /database/ feel: the 95th percentile of the route's request duration. Compare with "
        "the cause next to it: when both move together, the database is the reason.",
        "s",
        promql(PULL.latency(0.95, is_(ROUTE, "/database/")), "/database/ p95"),
    )


def pull_database_cause() -> timeseries.Panel:
    return pull_panel(
        "Cause: database query p95 (pull)",
        "Time spent in the (simulated) database, 95th percentile per operation, from "
        "db_query_duration_seconds. The gap to the /database/ latency is the time spent outside the query.",
        "s",
        promql(PULL.db_latency(0.95), "{{operation}} p95"),
    )


def push_latency() -> timeseries.Panel:
    return push_panel(
        "Latency mean / upper_90 / max (push)",
        "How long requests take, per endpoint and method, in ms. StatsD computes mean, 90th percentile "
        "(upper_90) and max (upper) from the raw timings of each flush, per series.",
        "ms",
        graphite(PUSH.latency("$endpoint")),
    )


def push_traffic() -> timeseries.Panel:
    return push_panel(
        "Traffic (push)",
        "Requests per second, per endpoint: StatsD's per-second counters (stats.*) of every method and "
        "status, summed by endpoint with groupByNode.",
        "reqps",
        graphite(PUSH.traffic("$endpoint")),
    )


def push_errors() -> timeseries.Panel:
    return push_panel(
        "Errors: 5xx and 4xx percent (push)",
        "Percent of requests answered with a 5xx (service failures) and a 4xx (client errors): asPercent "
        "of the status counters over all counters. 0 % is healthy.",
        "percent",
        graphite(PUSH.error_percent("$endpoint", "5*", "5xx")),
        graphite(PUSH.error_percent("$endpoint", "4*", "4xx")),
    )


def push_saturation() -> timeseries.Panel:
    return push_panel(
        "Saturation: requests in flight (push)",
        "Requests being answered now: a StatsD gauge every worker changes by deltas, so the workers add up. "
        "A count, not a ratio: StatsD knows nothing of capacity, so compare it with workers x threads.",
        "short",
        graphite(PUSH.in_flight()),
    )


def push_database_symptom() -> timeseries.Panel:
    return push_panel(
        "Symptom: /database/ latency upper_90 (push)",
        "What users of /database/ feel: the 90th percentile of the endpoint's timings in each flush, in ms.",
        "ms",
        graphite(PUSH.latency("database", "upper_90")),
    )


def push_database_cause() -> timeseries.Panel:
    return push_panel(
        "Cause: database query upper_90 (push)",
        "Time spent in the (simulated) database select, 90th percentile of each flush, in ms. When it moves "
        "with the /database/ latency next to it, the database is the reason.",
        "ms",
        graphite(f"alias({PUSH.db_timer('select', 'upper_90')}, 'select upper_90')"),
    )


# What differs between the two views of one signal: said once, under each pull vs push panel.
DIFFERENCES = {
    "latency": "Pull vs push: histogram_quantile over buckets can be re-aggregated (sum the buckets of every "
    f"worker and replica, over any window); StatsD's upper_90 is computed per {FLUSH:g} s flush and cannot "
    "be averaged or summed into a correct percentile over time or hosts. Buckets bound the pull precision "
    "(edges at 0.3, 1, 2, 3 s); push keeps exact per-flush values.",
    "traffic": f"Pull vs push: the pull rate is derived from a counter sampled every {SCRAPE:g} s (a missed "
    f"scrape loses no requests, only resolution); push counts every request in {FLUSH:g} s flushes, and a "
    f"lost UDP datagram is a lost request. The push line moves in {FLUSH:g} s steps and shows up to one "
    "flush later.",
    "errors": "Pull vs push: the same requests, counted twice. Prometheus's ratio is over the rate "
    "interval (a few scrapes), Graphite's per flush: the push line is spikier and shows errors up to "
    f"{FLUSH:g} s later.",
    "saturation": "Pull vs push: Prometheus reads in flight and capacity at each scrape and divides; the "
    f"StatsD gauge is sampled by each worker every second and flushed every {FLUSH:g} s, and has no "
    "capacity. A burst shorter than the sampling interval is invisible to both.",
    "causes": "Pull vs push: the same comparison from both sides, p95 from buckets (seconds) on the left, "
    "per-flush upper_90 (ms) on the right; both tell whether the database explains the route's latency.",
}


def explained(panel: timeseries.Panel, signal: str) -> timeseries.Panel:
    """Append to the panel's description what differs between pull and push for its signal."""
    return panel.description(f"{panel.build().description} {DIFFERENCES[signal]}")


GUIDE = f"""\
The **Four Golden Signals** (Google SRE book, ch. 6 *Monitoring Distributed Systems*) and their series. \
StatsD names start with the `prefix` variable (the app's STATSD_PREFIX, `{STATSD_PREFIX}` by default).

| signal | what it means | how to read it | Prometheus (pull) | Graphite (push, StatsD) |
| --- | --- | --- | --- | --- |
| **Latency** | time to answer a request | p99 for the slowest users, p50 for the typical one | \
`{HTTP_REQUEST_DURATION.name}` histogram: `histogram_quantile` over its `_bucket` rates, in s | \
`{PUSH.timer("<endpoint>", "<method>", "{mean,upper_90,upper}")}`, in ms per flush |
| **Traffic** | demand: requests per second | the baseline that gives the other three their size | \
`rate({HTTP_REQUESTS.name}[…])` | `{PUSH.requests("<endpoint>", "<method>", "<status>")}` (per second) |
| **Errors** | share of requests that fail | 5xx: the service failed (the availability SLO); 4xx: the \
client asked wrong; healthy is 0 % | `{HTTP_REQUESTS.name}{{status=~"5.."}}` over all | \
`{PUSH.requests(status="5*")}` over `{PUSH.requests()}` (`asPercent`) |
| **Saturation** | how full the service is | near 100 % requests queue and latency climbs | \
`{HTTP_IN_FLIGHT.name}` / `{HTTP_CAPACITY.name}` | \
`{PUSH.in_flight_series()}` (a count: StatsD knows no capacity) |

**Symptoms and causes.** Alert on symptoms, what users feel (the four signals); debug with causes, what \
explains them. The last row sets the `/database/` latency (symptom) next to the time spent in the database \
(cause: `{DB_QUERY_DURATION.name}`, `{PUSH.db_timer("select", "*")}`). The `instance` variable picks \
app replicas on the pull side; StatsD merges the replicas, so push has no instance.
"""


def guide() -> text.Panel:
    return (
        text.Panel()
        .title("How to read this dashboard")
        .description("The Four Golden Signals, what each means, and the pull and push series that carry it.")
        .mode(text_models.TextMode.MARKDOWN)
        .content(GUIDE)
        .span(24)
        .height(11)
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


def route_variable() -> dashboard.QueryVariable:
    return variable("route", PROMETHEUS, "label_values(http_requests_total, route)", ".*")


def endpoint_variable() -> dashboard.QueryVariable:
    return variable("endpoint", GRAPHITE, PUSH.endpoints(), "*")


def prefix_variable() -> dashboard.TextBoxVariable:
    """The StatsD prefix, a text box: set it to the app's STATSD_PREFIX (in the UI, or ?var-prefix=)."""
    return (
        dashboard.TextBoxVariable("prefix")
        .label("StatsD prefix")
        .description("The app's STATSD_PREFIX: every push series starts with it.")
        .default_value(STATSD_PREFIX)
        .current(dashboard_models.VariableOption(selected=True, text=STATSD_PREFIX, value=STATSD_PREFIX))
    )


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dashboard.QueryVariable],
    rows: list[tuple[str, list[timeseries.Panel]]],
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


SYMPTOMS_AND_CAUSES = "Symptoms and causes"


def dashboards() -> dict[str, dashboard_models.Dashboard]:
    """File name -> dashboard."""
    return {
        "golden-signals-prometheus.json": build_dashboard(
            "golden-signals-prometheus",
            "Golden signals: pull (Prometheus)",
            "The Four Golden Signals of the app as Prometheus scrapes them, per route and instance.",
            [instance_variable(), route_variable()],
            [
                ("Latency", [pull_latency(), worker_latency()]),
                ("Traffic", [pull_traffic()]),
                ("Errors", [pull_errors()]),
                ("Saturation", [pull_saturation()]),
                (SYMPTOMS_AND_CAUSES, [pull_database_symptom(), pull_database_cause()]),
            ],
        ),
        "golden-signals-graphite.json": build_dashboard(
            "golden-signals-graphite",
            "Golden signals: push (StatsD / Graphite)",
            "The Four Golden Signals of the app as StatsD pushes them to Graphite, per endpoint.",
            [prefix_variable(), endpoint_variable()],
            [
                ("Latency", [push_latency()]),
                ("Traffic", [push_traffic()]),
                ("Errors", [push_errors()]),
                ("Saturation", [push_saturation()]),
                (SYMPTOMS_AND_CAUSES, [push_database_symptom(), push_database_cause()]),
            ],
        ),
        "pull-vs-push.json": build_dashboard(
            "pull-vs-push",
            "Golden signals: pull vs push",
            "Each golden signal as Prometheus (pull, left) and StatsD/Graphite (push, right) see the same "
            f"requests. {PULL_SOURCE} {PUSH_SOURCE}",
            [instance_variable(), route_variable(), prefix_variable(), endpoint_variable()],
            [
                (signal.capitalize(), [explained(pull(), signal), explained(push(), signal)])
                for signal, pull, push in (
                    ("latency", pull_latency, push_latency),
                    ("traffic", pull_traffic, push_traffic),
                    ("errors", pull_errors, push_errors),
                    ("saturation", pull_saturation, push_saturation),
                )
            ]
            + [
                (
                    SYMPTOMS_AND_CAUSES,
                    [
                        explained(panel(), "causes")
                        for panel in (
                            pull_database_symptom,
                            pull_database_cause,
                            push_database_symptom,
                            push_database_cause,
                        )
                    ],
                )
            ],
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
