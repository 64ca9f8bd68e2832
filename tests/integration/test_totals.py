"""The same known traffic shows up, exactly, in both backends."""

import requests

from app.signals import (
    BLOG_REQUESTS,
    BLOG_SLOW,
    DB_QUERY_DURATION,
    ENDPOINT,
    HTTP_REQUEST_DURATION,
    METHOD,
    OPERATION,
    ROUTE,
    STATUS,
)
from lab.queries import is_

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


def expectations(stack):
    """Each backend's query for a series (the contract's names), with how much it must grow."""
    pull, push = stack.pull, stack.push
    for (method, path), (status, count) in MIX.items():
        route, endpoint = ROUTES[path]
        matchers = (is_(METHOD, method), is_(ROUTE, route), is_(STATUS, str(status)))
        yield pull.total(*matchers), push.requests(endpoint, method, str(status), per_second=False), count
    database = (is_(METHOD, "GET"), is_(ROUTE, "/database/"))
    yield (
        f"sum({pull.select(HTTP_REQUEST_DURATION.name + '_count', *database)})",
        push.timer("database", "GET", "count"),
        4,
    )
    yield (
        f"sum({pull.select(DB_QUERY_DURATION.name + '_count', is_(OPERATION, 'select'))})",
        push.db_timer("select", "count"),
        4,
    )


def blog_metrics(stack) -> dict[str, int]:
    """The post's own metrics exist in Prometheus only."""
    return {
        f"sum({stack.pull.select(BLOG_REQUESTS.name, is_(ENDPOINT, '/'))})": 30,
        f"sum({stack.pull.select(BLOG_SLOW.name + '_count', is_(ENDPOINT, '/database/'))})": 4,
    }


def test_known_traffic_appears_exactly_in_prometheus_and_graphite(stack):
    queries, blog = list(expectations(stack)), blog_metrics(stack)
    promql = [q for q, _, _ in queries] + list(blog)
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
    for query, count in blog.items():
        wait_until(
            lambda q=query: stack.promql(q), before_prometheus[query] + count, timeout, f"Prometheus {query}"
        )
