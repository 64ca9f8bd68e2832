"""The same known traffic shows up, exactly, in both backends."""

import requests

from ..helpers import wait_until
from .stack import settled

# (method, path) -> (status, how many)
MIX = {
    ("GET", "/"): (200, 30),
    ("GET", "/database/"): (200, 4),
    ("GET", "/no/such/page"): (404, 7),
    ("POST", "/"): (405, 5),
    ("DELETE", "/database/"): (405, 2),
    ("GET", "/error/"): (500, 3),
}
# path -> (Prometheus route label, StatsD endpoint)
ROUTES = {
    "/": ("/", "index"),
    "/database/": ("/database/", "database"),
    "/no/such/page": ("unmatched", "unmatched"),
    "/error/": ("/error/", "error"),
}
PREFIX = "lab.app"


def expectations():
    """Each backend's query for a series, with how much it must grow."""
    for (method, path), (status, count) in MIX.items():
        route, endpoint = ROUTES[path]
        yield (
            f'sum(http_requests_total{{method="{method}",route="{route}",status="{status}"}})',
            f"stats_counts.{PREFIX}.http.requests.{endpoint}.{method}.{status}",
            count,
        )
    yield (
        'sum(http_request_duration_seconds_count{method="GET",route="/database/"})',
        f"stats.timers.{PREFIX}.http.latency.database.GET.count",
        4,
    )
    yield (
        'sum(db_query_duration_seconds_count{operation="select"})',
        f"stats.timers.{PREFIX}.db.query.select.count",
        4,
    )


# The post's own metrics exist in Prometheus only.
POST_METRICS = {'sum(requests_total{endpoint="/"})': 30, 'sum(slow_count{endpoint="/database/"})': 4}


def test_known_traffic_appears_exactly_in_prometheus_and_graphite(stack):
    queries = list(expectations())
    promql = [q for q, _, _ in queries] + list(POST_METRICS)
    targets = [t for _, t, _ in queries]
    before_prometheus, before_graphite = settled(
        lambda: ({q: stack.promql(q) for q in promql}, {t: stack.graphite_sum(t) for t in targets}), stack
    )

    session = requests.Session()
    for (method, path), (status, count) in MIX.items():
        for _ in range(count):
            assert session.request(method, stack.app + path, timeout=10).status_code == status

    timeout = 10 * stack.settle_seconds()
    for query, target, count in queries:
        wait_until(
            lambda q=query: stack.promql(q), before_prometheus[query] + count, timeout, f"Prometheus {query}"
        )
        wait_until(
            lambda t=target: stack.graphite_sum(t),
            before_graphite[target] + count,
            timeout,
            f"Graphite {target}",
        )
    for query, count in POST_METRICS.items():
        wait_until(
            lambda q=query: stack.promql(q), before_prometheus[query] + count, timeout, f"Prometheus {query}"
        )
