"""Nothing names a series the signal contract (app/signals.py, lab/queries.py) does not define
(read by lab/contract.py, which `lab where` reads through too).

The dashboards, the rule files and the experiment are read as they are shipped
(JSON, YAML, the experiment's own query set): a typo, a renamed metric or a
hard-coded StatsD prefix in any of them fails here, before a panel goes blank.
"""

import pytest

from app import signals
from lab import queries
from lab.contract import (
    dashboard_queries,
    graphite_defines,
    graphite_paths,
    known_prometheus_series,
    promql_series,
    query_series,
    rule_expressions,
)
from lab.experiment.queries import Queries
from lab.queries import Pipelines


def test_every_series_a_dashboard_queries_is_in_the_contract():
    checked = 0
    for query in dashboard_queries():
        if query.kind == "prometheus":
            unknown = query_series(query) - known_prometheus_series()
            assert not unknown, f"{query.where}: {unknown} not in the contract"
        else:
            for path in graphite_paths(query.text):
                assert graphite_defines(path, find=query.find), f"{query.where}: {path} not in the contract"
        checked += 1
    assert checked >= 30


def test_every_series_a_rule_reads_is_in_the_contract():
    for where, expr in rule_expressions():
        unknown = promql_series(expr) - known_prometheus_series()
        assert not unknown, f"{where}: {unknown} not in the contract"


def test_every_series_the_experiment_asks_for_is_in_the_contract():
    asked = Queries(
        Pipelines.of_stack(prefix=signals.STATSD_PREFIX, scrape_seconds=5, export_seconds=5)
    ).all()
    assert len(asked) >= 10
    for query in asked:
        if query.startswith(queries.PER_SECOND) or "(stats" in query:
            paths = graphite_paths(query)
            assert paths and all(graphite_defines(path) for path in paths), query
        else:
            unknown = promql_series(query) - known_prometheus_series()
            assert not unknown, f"{query}: {unknown} not in the contract"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        (
            'sum by (le, route) (rate(http_request_duration_seconds_bucket{route=~"$route"}[5m]))',
            {"http_request_duration_seconds_bucket"},
        ),
        (
            '(sum(rate(http_requests_total{status=~"5.."}[1m])) or vector(0)) / sum(up offset 300ms)',
            {"http_requests_total", "up"},
        ),
        (
            "job:slo_availability_errors:ratio_rate1h > (14.4 * 0.005)",
            {"job:slo_availability_errors:ratio_rate1h"},
        ),
    ],
)
def test_the_promql_reader_finds_the_series(query, names):
    assert promql_series(query) == names


def test_a_name_outside_the_contract_is_caught():
    assert promql_series("sum(rate(http_request_total[1m]))") - known_prometheus_series() == {
        "http_request_total"
    }
    assert graphite_defines("stats.timers.$prefix.http.latency.$endpoint.*.upper_90")
    assert not graphite_defines("stats.lab.app.http.request.index.GET.200")  # requests, misspelt
    assert not graphite_defines("stats.timers.lab.app.http.in_flight")  # a gauge is not a timer
    assert graphite_defines("stats.timers.$prefix.http.latency.*", find=True)
