"""The same known traffic shows up, exactly, in all three pipelines: scraped, pushed over OTLP,
pushed through StatsD."""

from typing import NamedTuple

import requests

from app.signals import (
    BLOG_REQUESTS,
    BLOG_SLOW,
    ENDPOINT,
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


class Expected(NamedTuple):
    """One series in each pipeline (the contract's names), and how much it must grow."""

    pull: str  # PromQL, on Prometheus
    otel: str  # PromQL, on the OTLP receiver
    push: str  # a Graphite target
    count: int


def expectations(stack):
    pull, otel, push = stack.pull, stack.otel_queries, stack.push
    for (method, path), (status, count) in MIX.items():
        route, endpoint = ROUTES[path]
        yield Expected(
            pull.total(is_(METHOD, method), is_(ROUTE, route), is_(STATUS, str(status))),
            otel.total(
                is_(otel.names.method, method),
                is_(otel.names.route, route),
                is_(otel.names.status, str(status)),
            ),
            push.requests(endpoint, method, str(status), per_second=False),
            count,
        )
    yield Expected(
        pull.count(pull.names.duration, is_(METHOD, "GET"), is_(ROUTE, "/database/")),
        otel.count(otel.names.duration, is_(otel.names.method, "GET"), is_(otel.names.route, "/database/")),
        push.timer("database", "GET", "count"),
        4,
    )
    yield Expected(
        pull.count(pull.names.db_duration, is_(OPERATION, "select")),
        otel.count(otel.names.db_duration, is_(otel.names.db_operation, "select")),
        push.db_timer("select", "count"),
        4,
    )


def blog_metrics(stack) -> dict[str, int]:
    """The post's own metrics exist in Prometheus only."""
    return {
        f"sum({stack.pull.select(BLOG_REQUESTS.name, is_(ENDPOINT, '/'))})": 30,
        f"sum({stack.pull.select(BLOG_SLOW.name + '_count', is_(ENDPOINT, '/database/'))})": 4,
    }


def test_known_traffic_appears_exactly_in_all_three_pipelines(stack):
    expected, blog = list(expectations(stack)), blog_metrics(stack)
    promql = [e.pull for e in expected] + list(blog)

    def read():
        return (
            {q: stack.promql(q) for q in promql},
            {e.otel: stack.otel_promql(e.otel) for e in expected},
            {e.push: stack.graphite_sum(e.push) for e in expected},
        )

    before_prometheus, before_otel, before_graphite = settled(read, stack)

    session = requests.Session()
    for (method, path), (status, count) in MIX.items():
        for _ in range(count):
            assert session.request(method, stack.app + path, timeout=10).status_code == status

    timeout = 10 * stack.settle_seconds()
    for e in expected:
        wait_until(lambda q=e.pull: stack.promql(q), before_prometheus[e.pull] + e.count, timeout, e.pull)
        wait_until(lambda q=e.otel: stack.otel_promql(q), before_otel[e.otel] + e.count, timeout, e.otel)
        wait_until(lambda t=e.push: stack.graphite_sum(t), before_graphite[e.push] + e.count, timeout, e.push)
    for query, count in blog.items():
        wait_until(
            lambda q=query: stack.promql(q), before_prometheus[query] + count, timeout, f"Prometheus {query}"
        )
