"""lab/queries.py: each golden signal's query per backend, and the one factory of a pipeline's query set."""

from app import signals
from lab import queries
from lab.contract import graphite_defines, graphite_paths, known_prometheus_series, promql_series
from lab.queries import Pipelines, rate_window


def test_the_fault_queries_read_the_faults_series_of_the_contract():
    pull = queries.PullQueries(scope=('job="app"',))
    assert pull.fault_error_ratio() == 'max by (route) (lab_fault_error_ratio{job="app"})'
    assert pull.fault_latency(queries.is_(signals.ROUTE, "/"), by="") == (
        'max(lab_fault_latency_seconds{route="/",job="app"})'
    )
    for query in (pull.fault_error_ratio(), pull.fault_latency()):
        assert promql_series(query) <= known_prometheus_series(), query
    push = queries.PushQueries()
    assert push.fault_error_ratio() == "aliasByNode(stats.gauges.$prefix.faults.*.error_ratio, -2)"
    assert push.fault_latency("index") == "aliasByNode(stats.gauges.$prefix.faults.index.latency_ms, -2)"
    for target in (push.fault_error_ratio(), push.fault_latency()):
        paths = graphite_paths(target)
        assert paths and all(graphite_defines(path) for path in paths), target


def test_a_rate_window_holds_four_periods_and_at_least_the_floor():
    assert rate_window(5) == "20s"
    assert rate_window(1) == "4s"
    assert rate_window(1, least_seconds=15) == "15s"
    assert rate_window(0.25) == "4s"


def test_a_stacks_pipelines_ask_its_jobs_with_windows_from_its_intervals():
    stack = Pipelines.of_stack(prefix="labtest.app", scrape_seconds=5, export_seconds=2, service="shop")
    assert stack.pull.traffic() == 'sum(rate(http_requests_total{job="app"}[20s]))'
    assert stack.otel.traffic() == 'sum(rate(http_server_request_duration_seconds_count{job="shop"}[8s]))'
    counts = stack.push.requests("index", per_second=False)
    assert counts == "stats_counts.labtest.app.http.requests.index.*.*"


def test_grafanas_pipelines_use_its_variables():
    grafana = Pipelines.of_grafana()
    assert grafana.pull.traffic() == 'sum(rate(http_requests_total{instance=~"$instance"}[$__rate_interval]))'
    assert grafana.otel.scope == () and grafana.otel.window == "$__rate_interval"
    assert grafana.push.prefix == "$prefix"
