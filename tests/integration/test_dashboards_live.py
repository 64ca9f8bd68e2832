"""Every query of every dashboard returns data from the live backends, as Grafana would
ask for it (the stats now and the SLOs' budgets and burn rates among them), and so does
every template variable; every annotation marks a change of an injected fault, as each
backend saw it; and the live Prometheus loads every rule, healthy.

Grafana itself is not needed: its template variables are substituted here (the
`All` value of each variable, `$__rate_interval` a few scrapes or pushes long).
Text panels have no queries, and neither has the alert list: Grafana reads the
Prometheus datasource's rules for it (tests/test_dashboards.py checks which). Each
datasource uid stands for one of the stack's URLs: `prometheus` the scraping
Prometheus, `otel` the OTLP receiver (in compose the same Prometheus; natively
VictoriaMetrics), `graphite` graphite-web.
"""

import json
import os
import re
import time

import pytest
import requests
import yaml

from app.signals import ROUTE, STATSD_PREFIX
from lab.fault_control import FaultControl
from lab.queries import PushQueries, is_

from ..helpers import ROOT
from .dashboards import (
    TRAFFIC,
    boards,
    eventually,
    graphite_points,
    graphite_series,
    panel_targets,
    prometheus_points,
    prometheus_series,
    promql_url,
    send_traffic,
    substitute,
)

RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
# The route whose faults the annotation tests change (it fails anyway), and its StatsD endpoint.
FAULTED_ROUTE, FAULTED_ENDPOINT = "/error/", "error"


@pytest.fixture(scope="module")
def traffic(stack) -> float:
    """Send the traffic twice, a scrape (and an OTLP push) apart; return when it started.

    rate() sees no increase in a series' first sample: a series born with all of
    its traffic would give a rate of 0 (and histogram_quantile NaN). So the first
    round creates every series, and the second one, once Prometheus has scraped
    the first and every worker has pushed it, is the increase the panels show.
    """
    started = time.time()
    send_traffic(stack)
    otel = stack.otel_queries
    seen = {
        "Prometheus": (stack.promql, stack.pull.total(is_(ROUTE, "/database/"))),
        "the OTLP receiver": (stack.otel_promql, otel.total(is_(otel.names.route, "/database/"))),
    }
    deadline = time.monotonic() + 20 * stack.settle_seconds()
    for backend, (value, query) in seen.items():
        while value(query) < TRAFFIC["/database/"][1]:
            assert time.monotonic() < deadline, f"{backend} never saw the first round: {query}"
            time.sleep(stack.scrape_seconds / 2)
    send_traffic(stack)
    return started


@pytest.mark.parametrize(("dashboard", "panel", "target", "variables"), list(panel_targets()))
def test_every_panel_query_returns_data(stack, traffic, dashboard, panel, target, variables):
    since, uid = traffic - 5, target["datasource"]["uid"]
    if uid == "graphite":
        query = substitute(target["target"], variables, stack, uid)
        read = lambda: graphite_points(stack, query, since - 60)  # noqa: E731
    else:
        query = substitute(target["expr"], variables, stack, uid)
        read = lambda: prometheus_points(stack, promql_url(stack, uid), query, since)  # noqa: E731
    eventually(stack, read, f"{dashboard} / {panel}: no data for {query}")


def template_variables():
    for board in boards():
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            yield pytest.param(board["title"], variable, id=f"{board['uid']}/{variable['name']}")


def variable_values(stack, variable: dict) -> list[str]:
    """The values Grafana would offer for a query variable (label_values or a Graphite find)."""
    uid = variable["datasource"]["uid"]
    if uid != "graphite":
        selector, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()
        params = {"match[]": selector, "start": stack.started_at - 60}
        url = f"{promql_url(stack, uid)}/api/v1/label/{label}/values"
        response = requests.get(url, params=params, timeout=10)
        assert response.status_code == 200, f"{variable['query']}: {response.text}"
        return response.json()["data"]
    query = substitute(variable["query"], {}, stack, uid)
    response = requests.get(f"{stack.graphite}/metrics/find", params={"query": query}, timeout=10)
    assert response.status_code == 200, f"{variable['query']}: {response.text[-2000:]}"
    return [node["text"] for node in response.json()]


@pytest.mark.parametrize(("dashboard", "variable"), list(template_variables()))
def test_every_template_variable_offers_values(stack, traffic, dashboard, variable):
    values = eventually(
        stack, lambda: variable_values(stack, variable), f"{dashboard}: {variable['name']} offers nothing"
    )
    assert all(values), f"{dashboard}: variable {variable['name']} offers an empty value: {values}"


def annotation_query(annotation: dict) -> str:
    target = annotation["target"]
    return target.get("expr") or target["target"]


def annotations():
    for board in boards():
        variables = {v["name"]: v.get("allValue") for v in board["templating"]["list"]}
        for annotation in board["annotations"]["list"]:
            yield pytest.param(
                board["title"], annotation, variables, id=f"{board['uid']}/{annotation['name']}"
            )


@pytest.fixture(scope="module")
def fault_changed(stack):
    """Change both faults of FAULTED_ROUTE once each backend holds its fault gauges; yield when.

    A mark is a change: the gauges must have a value before (0, no fault) for one to be seen.
    """
    gauges = {
        "Prometheus": lambda: stack.promql(f"count({stack.pull.fault_error_ratio()})"),
        "Graphite": lambda: stack.graphite_last(stack.push.fault_error_ratio()) is not None,
    }
    for backend, read in gauges.items():
        eventually(stack, read, f"{backend} never held the app's fault gauges")
    control = FaultControl(stack.app, stack.admin_token)
    changed_at = time.time()
    control.replace({"routes": {FAULTED_ROUTE: {"error_rate": 1, "latency_ms": 1}}})
    yield changed_at
    control.clear()


def marks(stack, uid: str, query: str, since: float) -> list[tuple[str, float]]:
    """(what, when) of each event an annotation query gives Grafana: a Prometheus point above 0
    (`what` its labels), or a Graphite point neither null nor 0 (`what` its series' name)."""
    if uid == "graphite":
        return [
            (series["target"], when)
            for series in graphite_series(stack, query, since)
            for value, when in series["datapoints"]
            if value
        ]
    return [
        (json.dumps(series["metric"]), float(when))
        for series in prometheus_series(stack, promql_url(stack, uid), query, since)
        for when, value in series["values"]
        if float(value) > 0
    ]


@pytest.mark.parametrize(("dashboard", "annotation", "variables"), list(annotations()))
def test_every_annotation_marks_a_fault_change(stack, fault_changed, dashboard, annotation, variables):
    uid = annotation["datasource"]["uid"]
    query = substitute(annotation_query(annotation), variables, stack, uid)
    read = lambda: marks(stack, uid, query, fault_changed - 60)  # noqa: E731
    found = eventually(stack, read, f"{dashboard} / {annotation['name']}: no mark of the change: {query}")
    # The change the fixture made (the only one): on its route, not before it (a flush or a step early
    # at most: Graphite's points and Prometheus's steps start on whole seconds).
    named = f'"{ROUTE}": "{FAULTED_ROUTE}"' if uid != "graphite" else f" on {FAULTED_ENDPOINT} "
    assert all(named in what for what, _ in found), found
    assert min(when for _, when in found) >= fault_changed - stack.settle_seconds(), found


def test_the_push_panels_run_under_the_stacks_own_prefix(stack):
    # The native test stack sets a STATSD_PREFIX of its own: the push panels above returned data
    # with the dashboards' `prefix` variable set to it, as a user sets it in the UI or the URL.
    if os.environ.get("LAB_STACK", "native") != "native":
        pytest.skip("the compose stack runs with the STATSD_PREFIX of .env")
    assert stack.prefix != STATSD_PREFIX
    # Nothing under the default prefix: the panels' data can only have come from the variable.
    assert stack.graphite_sum(PushQueries(prefix=STATSD_PREFIX).requests(per_second=False)) == 0


def test_prometheus_loads_every_rule_healthy(stack):
    expected = sum(
        len(group["rules"]) for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
    )
    deadline = time.monotonic() + 20 * stack.settle_seconds()
    while True:
        response = requests.get(f"{stack.prometheus}/api/v1/rules", timeout=10)
        response.raise_for_status()
        rules = [rule for group in response.json()["data"]["groups"] for rule in group["rules"]]
        unhealthy = {
            rule["name"]: (rule["health"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"
        }
        if len(rules) == expected and not unhealthy:
            return
        assert time.monotonic() < deadline, f"{len(rules)} of {expected} rules loaded; not ok: {unhealthy}"
        time.sleep(stack.settle_seconds() / 2)
