"""Generate the lab's Grafana dashboards (grafana/dashboards/*.json) from plain dicts.

    python grafana/build.py           # write the JSON files
    python grafana/build.py --check   # exit 1 if a committed file differs from what this writes

The JSON is what Grafana provisions (grafana/provisioning/dashboards/dashboards.yml);
tests/test_dashboards.py checks that regenerating gives exactly the committed files.
Each signal is written once, as a panel function, and reused by the dashboards.
"""

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
GRAPHITE = {"type": "graphite", "uid": "graphite"}
PREFIX = "lab.app"  # STATSD_PREFIX
TAG = "observability-lab"
RATE = "$__rate_interval"


# -- query targets --------------------------------------------------------------------------------


def promql(expr: str, legend: str) -> dict:
    return {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "range": True}


def graphite(target: str) -> dict:
    return {"datasource": GRAPHITE, "target": target, "textEditor": True}


def quantile(q: float, metric: str, selector: str, by: str = "le") -> str:
    matchers = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket{matchers}[{RATE}])))"


# -- panels ---------------------------------------------------------------------------------------


def timeseries(title: str, description: str, unit: str, *targets: dict) -> dict:
    """A time series panel on its targets' datasource (one per panel)."""
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": targets[0]["datasource"],
        "fieldConfig": {
            "defaults": {"unit": unit, "min": 0, "custom": {"lineWidth": 1, "fillOpacity": 10}},
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [{"refId": chr(ord("A") + i), **target} for i, target in enumerate(targets)],
    }


# Pull (Prometheus): the app's metrics, filtered by the `route` variable.
ROUTE = 'route=~"$route"'
PULL_SOURCE = "Pull: Prometheus scrapes /metrics every 5 s and keeps every scrape."
PUSH_SOURCE = (
    "Push: every request sends one StatsD datagram; StatsD aggregates and flushes to Graphite every 10 s."
)


def pull_latency() -> dict:
    return timeseries(
        "Latency p50 / p95 / p99 (pull)",
        "How long requests take, per route. Percentiles computed at query time by histogram_quantile over "
        "the rate of the http_request_duration_seconds buckets, so they add up over workers, replicas and "
        "any time window. Read p99 for the slowest users, p50 for the typical one.",
        "s",
        *(
            promql(
                quantile(q, "http_request_duration_seconds", ROUTE, "le, route"),
                f"p{round(q * 100)} {{{{route}}}}",
            )
            for q in (0.5, 0.95, 0.99)
        ),
    )


def pull_traffic() -> dict:
    return timeseries(
        "Traffic (pull)",
        "Requests per second answered, per route (every status, 404 and 500 included): the demand on the "
        "service. rate() of the http_requests_total counter.",
        "reqps",
        promql(f"sum by (route) (rate(http_requests_total{{{ROUTE}}}[{RATE}]))", "{{route}}"),
    )


def pull_errors() -> dict:
    def ratio(status: str) -> str:
        errors = f'sum(rate(http_requests_total{{{ROUTE},status=~"{status}"}}[{RATE}]))'
        return f"({errors} or vector(0)) / sum(rate(http_requests_total{{{ROUTE}}}[{RATE}]))"

    return timeseries(
        "Errors: 5xx and 4xx ratio (pull)",
        "Share of requests answered with a 5xx (the service failed: counts against the availability SLO) "
        "and with a 4xx (the client asked for something wrong: a spike can still mean a broken link or "
        "client). 0 % is healthy.",
        "percentunit",
        promql(ratio("5.."), "5xx"),
        promql(ratio("4.."), "4xx"),
    )


def pull_saturation() -> dict:
    return timeseries(
        "Saturation: busy workers (pull)",
        "Requests in flight over capacity (gunicorn workers x threads, both live sums over the workers). "
        "Near 100 % new requests wait in the queue and latency climbs.",
        "percentunit",
        promql("sum(http_requests_in_flight) / sum(http_requests_capacity)", "in flight / capacity"),
    )


def worker_latency() -> dict:
    return timeseries(
        "Worker: mean processing time",
        "The post's non-web worker: mean time of its request_processing_seconds Summary, rate(_sum) / "
        "rate(_count). A Summary has no buckets: this mean (or its client-side quantiles) is all it gives.",
        "s",
        promql(
            f"sum(rate(request_processing_seconds_sum[{RATE}]))"
            f" / sum(rate(request_processing_seconds_count[{RATE}]))",
            "mean",
        ),
    )


def pull_database_symptom() -> dict:
    return timeseries(
        "Symptom: /database/ latency p95 (pull)",
        "What users of /database/ feel: the 95th percentile of the route's request duration. Compare with "
        "the cause next to it: when both move together, the database is the reason.",
        "s",
        promql(quantile(0.95, "http_request_duration_seconds", 'route="/database/"'), "/database/ p95"),
    )


def pull_database_cause() -> dict:
    return timeseries(
        "Cause: database query p95 (pull)",
        "Time spent in the (simulated) database, 95th percentile per operation, from "
        "db_query_duration_seconds. The gap to the /database/ latency is the time spent outside the query.",
        "s",
        promql(quantile(0.95, "db_query_duration_seconds", "", "le, operation"), "{{operation}} p95"),
    )


# Push (Graphite): StatsD series, filtered by the `endpoint` variable (Flask endpoint names).
REQUESTS = f"stats.{PREFIX}.http.requests.$endpoint"  # .{method}.{status}, per second


def push_latency() -> dict:
    return timeseries(
        "Latency mean / upper_90 / max (push)",
        "How long requests take, per endpoint and method, in ms. StatsD computes mean, 90th percentile "
        "(upper_90) and max (upper) from the raw timings of each flush, per series.",
        "ms",
        graphite(
            f"aliasByNode(stats.timers.{PREFIX}.http.latency.$endpoint.*.{{mean,upper_90,upper}}, 6, 7, 8)"
        ),
    )


def push_traffic() -> dict:
    return timeseries(
        "Traffic (push)",
        "Requests per second, per endpoint: StatsD's per-second counters (stats.*) of every method and "
        "status, summed by endpoint with groupByNode.",
        "reqps",
        graphite(f"groupByNode({REQUESTS}.*.*, 5, 'sumSeries')"),
    )


def push_errors() -> dict:
    def percent(status: str, name: str) -> str:
        return f"alias(asPercent(sumSeries({REQUESTS}.*.{status}), sumSeries({REQUESTS}.*.*)), '{name}')"

    return timeseries(
        "Errors: 5xx and 4xx percent (push)",
        "Percent of requests answered with a 5xx (service failures) and a 4xx (client errors): asPercent "
        "of the status counters over all counters. 0 % is healthy.",
        "percent",
        graphite(percent("5*", "5xx")),
        graphite(percent("4*", "4xx")),
    )


def push_saturation() -> dict:
    return timeseries(
        "Saturation: requests in flight (push)",
        "Requests being answered now: a StatsD gauge every worker changes by deltas, so the workers add up. "
        "A count, not a ratio: StatsD knows nothing of capacity, so compare it with workers x threads.",
        "short",
        graphite(f"alias(stats.gauges.{PREFIX}.http.in_flight, 'in flight')"),
    )


def push_database_symptom() -> dict:
    return timeseries(
        "Symptom: /database/ latency upper_90 (push)",
        "What users of /database/ feel: the 90th percentile of the endpoint's timings in each flush, in ms.",
        "ms",
        graphite(f"aliasByNode(stats.timers.{PREFIX}.http.latency.database.*.upper_90, 6, 7, 8)"),
    )


def push_database_cause() -> dict:
    return timeseries(
        "Cause: database query upper_90 (push)",
        "Time spent in the (simulated) database select, 90th percentile of each flush, in ms. When it moves "
        "with the /database/ latency next to it, the database is the reason.",
        "ms",
        graphite(f"alias(stats.timers.{PREFIX}.db.query.select.upper_90, 'select upper_90')"),
    )


# What differs between the two views of one signal: said once, under each overview panel.
DIFFERENCES = {
    "latency": "Pull vs push: histogram_quantile over buckets can be re-aggregated (sum the buckets of every "
    "worker and replica, over any window); StatsD's upper_90 is computed per 10 s flush and cannot be "
    "averaged or summed into a correct percentile over time or hosts. Buckets bound the pull precision "
    "(edges at 0.3, 1, 2, 3 s); push keeps exact per-flush values.",
    "traffic": "Pull vs push: the pull rate is derived from a counter sampled every 5 s (a missed scrape "
    "loses no requests, only resolution); push counts every request in 10 s flushes, and a lost UDP "
    "datagram is a lost request. The push line moves in 10 s steps and shows up to one flush later.",
    "errors": "Pull vs push: the same requests, counted twice. Prometheus's ratio is over the rate "
    "interval (a few scrapes), Graphite's per flush: the push line is spikier and shows errors up to 10 s "
    "later.",
    "saturation": "Pull vs push: Prometheus reads in flight and capacity at each scrape and divides; the "
    "StatsD gauge is sampled by each worker every second and flushed every 10 s, and has no capacity. A "
    "burst shorter than the sampling interval is invisible to both.",
}


def explained(panel: dict, signal: str) -> dict:
    return {**panel, "description": f"{panel['description']} {DIFFERENCES[signal]}"}


# -- layout and dashboards ------------------------------------------------------------------------


def layout(rows: list[tuple[str, str, list[dict]]]) -> list[dict]:
    """Rows of panels, side by side in equal widths; ids and gridPos assigned in order."""
    panels, y = [], 0
    for title, description, row_panels in rows:
        panels.append(
            {
                "type": "row",
                "title": title,
                "description": description,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        width = 24 // len(row_panels)
        for i, panel in enumerate(row_panels):
            panels.append({**panel, "gridPos": {"h": 8, "w": width, "x": i * width, "y": y}})
        y += 8
    return [{"id": i, **panel} for i, panel in enumerate(panels, start=1)]


def route_variable() -> dict:
    query = "label_values(http_requests_total, route)"
    return {
        "name": "route",
        "label": "route",
        "type": "query",
        "datasource": PROMETHEUS,
        "query": query,
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
    }


def endpoint_variable() -> dict:
    query = f"stats.timers.{PREFIX}.http.latency.*"
    return {
        "name": "endpoint",
        "label": "endpoint",
        "type": "query",
        "datasource": GRAPHITE,
        "query": query,
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": "*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
    }


def dashboard(uid: str, title: str, description: str, variables: list[dict], rows: list) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,  # shared crosshair: the same moment in every panel
        "time": {"from": "now-15m", "to": "now"},
        "refresh": "10s",
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": [TAG], "title": "Lab dashboards", "asDropdown": True}],
        "templating": {"list": variables},
        "panels": layout(rows),
    }


def dashboards() -> dict[str, dict]:
    """File name -> dashboard."""
    return {
        "golden-signals-prometheus.json": dashboard(
            "golden-signals-prometheus",
            "Golden signals: pull (Prometheus)",
            "The Four Golden Signals of the app as Prometheus scrapes them, per route.",
            [route_variable()],
            [
                ("Latency", "How long requests take.", [pull_latency(), worker_latency()]),
                ("Traffic", "How much demand the service gets.", [pull_traffic()]),
                ("Errors", "How many requests fail.", [pull_errors()]),
                ("Saturation", "How full the service is.", [pull_saturation()]),
                (
                    "Symptoms and causes",
                    "A symptom users feel next to the cause behind it.",
                    [pull_database_symptom(), pull_database_cause()],
                ),
            ],
        ),
        "golden-signals-graphite.json": dashboard(
            "golden-signals-graphite",
            "Golden signals: push (StatsD / Graphite)",
            "The Four Golden Signals of the app as StatsD pushes them to Graphite, per endpoint.",
            [endpoint_variable()],
            [
                ("Latency", "How long requests take.", [push_latency()]),
                ("Traffic", "How much demand the service gets.", [push_traffic()]),
                ("Errors", "How many requests fail.", [push_errors()]),
                ("Saturation", "How full the service is.", [push_saturation()]),
                (
                    "Symptoms and causes",
                    "A symptom users feel next to the cause behind it.",
                    [push_database_symptom(), push_database_cause()],
                ),
            ],
        ),
        "pull-vs-push.json": dashboard(
            "pull-vs-push",
            "Golden signals: pull vs push",
            "Each golden signal as Prometheus (pull, left) and StatsD/Graphite (push, right) see the same "
            f"requests. {PULL_SOURCE} {PUSH_SOURCE}",
            [route_variable(), endpoint_variable()],
            [
                (
                    signal.capitalize(),
                    f"{signal.capitalize()}: pull on the left, push on the right.",
                    [explained(pull(), signal), explained(push(), signal)],
                )
                for signal, pull, push in (
                    ("latency", pull_latency, push_latency),
                    ("traffic", pull_traffic, push_traffic),
                    ("errors", pull_errors, push_errors),
                    ("saturation", pull_saturation, push_saturation),
                )
            ],
        ),
    }


def render(board: dict) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, board in dashboards().items():
        path, text = OUT / name, render(board)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run python grafana/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
