"""Grafana's queries without Grafana: the committed dashboards as Grafana opens them, each query as it
sends it (its variables substituted), and the traffic that gives every panel data. Shared by the live
dashboards test (tests/integration/test_dashboards_live.py) and the HA stack's (test_ha.py), which
asks replica b and the long-term store what the pull dashboards' `datasource` variable offers.
"""

import functools
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from lab.backends import Graphite, Prometheus

from ..helpers import DASHBOARDS, opened

# Enough for every panel: fast and slow routes, a 404 and a 500.
TRAFFIC = {"/": (200, 10), "/database/": (200, 6), "/no/such/page": (404, 3), "/error/": (500, 2)}
# Panels Grafana fills without a query of theirs.
NO_QUERIES = ("row", "text", "alertlist")


def boards() -> list[dict]:
    return [opened(path) for path in DASHBOARDS]


def panel_targets():
    for board in boards():
        variables = {v["name"]: v.get("allValue") for v in board["templating"]["list"]}
        for panel in board["panels"]:
            if panel["type"] in NO_QUERIES:
                assert not panel.get("targets"), (
                    f"{board['title']} / {panel['title']}: a query in a {panel['type']}"
                )
                continue
            for target in panel["targets"]:
                yield pytest.param(
                    board["title"],
                    panel["title"],
                    target,
                    variables,
                    id=f"{board['uid']}/{panel['id']}{target['refId']}",
                )


def send_traffic(stack) -> None:
    """The known traffic; /database/ concurrently, so that requests are in flight."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        for path, (status, count) in TRAFFIC.items():
            answers = pool.map(lambda p: requests.get(stack.app + p, timeout=10), [path] * count)
            assert [answer.status_code for answer in answers] == [status] * count, path


@functools.cache
def slowest_group_seconds(prometheus: str) -> float:
    """How often the running Prometheus's slowest rule group runs (natively, shortened with its scrapes)."""
    return max(Prometheus(prometheus).rule_group_intervals().values())


def eventually(stack, read, failure: str):
    """Poll `read()` until it returns something (points, values); fail with `failure`. A panel reading
    a series recorded once a minute (the SLO budget's 30 days) may wait for that group's next run."""
    slowest = slowest_group_seconds(stack.prometheus)
    deadline = time.monotonic() + max(20 * stack.settle_seconds(), slowest + 4 * stack.settle_seconds())
    while not (result := read()):
        assert time.monotonic() < deadline, failure
        time.sleep(stack.settle_seconds() / 2)
    return result


def promql_url(stack, uid: str) -> str:
    """The stack's URL behind a PromQL datasource."""
    return {"prometheus": stack.prometheus, "otel": stack.otel}[uid]


def rate_interval(stack, uid: str) -> str:
    """$__rate_interval on a datasource: a few of its scrapes, or of each worker's OTLP pushes."""
    return (stack.otel_queries if uid == "otel" else stack.pull).window


def substitute(query: str, variables: dict, stack, uid: str) -> str:
    """The query as Grafana sends it: each variable on All, the StatsD prefix set to the stack's."""
    values = {**variables, "__rate_interval": rate_interval(stack, uid), "prefix": stack.prefix}
    return re.sub(r"\$\{?(\w+)\}?", lambda match: values[match.group(1)], query)


def prometheus_series(stack, url: str, query: str, since: float) -> list[dict]:
    """A range query's series since `since` from the PromQL backend at `url`, a step a scrape long, as
    Grafana asks for them."""
    params = {"query": query, "start": since, "end": time.time(), "step": stack.scrape_seconds}
    response = requests.get(f"{url}/api/v1/query_range", params=params, timeout=10)
    assert response.status_code == 200, f"{query}: {response.text}"
    return response.json()["data"]["result"]


def prometheus_points(stack, url: str, query: str, since: float) -> list[float]:
    values = [float(v) for series in prometheus_series(stack, url, query, since) for _, v in series["values"]]
    return [v for v in values if math.isfinite(v)]


def graphite_series(stack, target: str, since: float) -> list[dict]:
    return Graphite(stack.graphite).render(target, since)  # an error answer raises, naming the query


def graphite_points(stack, target: str, since: float) -> list[float]:
    series = graphite_series(stack, target, since)
    return [point for one in series for point, _ in one["datapoints"] if point is not None]
