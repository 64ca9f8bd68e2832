"""Nothing names a series the signal contract (app/signals.py, lab/queries.py) does not define.

The dashboards, the rule files and the experiment are read as they are shipped
(JSON, YAML, the experiment's own query set): a typo, a renamed metric or a
hard-coded StatsD prefix in any of them fails here, before a panel goes blank.
"""

import json
import re

import pytest
import yaml

from app import signals
from lab import experiment, queries

from .helpers import ROOT

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_OPERATORS = {"or", "and", "unless", "offset", "bool", "inf", "nan"}


def promql_series(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords, labels and numbers left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)  # matchers, ranges
    expr = re.sub(rf"\b(?:{'|'.join(PROMQL_KEYWORDS)})\s*\([^)]*\)", " ", expr)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        name, call = match.groups()
        if not call and name not in PROMQL_OPERATORS and not re.fullmatch(r"\d+(ms|s|m|h|d)", name):
            names.add(name)
    return names


GRAPHITE_NODE = r"(?:[\w$*\-]|\{[^}]*\})+"
GRAPHITE_PATH = re.compile(rf"{GRAPHITE_NODE}(?:\.{GRAPHITE_NODE})+")


def graphite_paths(target: str) -> list[str]:
    """The series paths a Graphite target names (quoted aliases left out)."""
    return GRAPHITE_PATH.findall(re.sub(r"'[^']*'", "''", target))


def node_pattern(node: str) -> re.Pattern:
    """A Graphite glob node (`5*`, `{mean,upper_90}`, a `$variable`) as a regex."""
    pattern = re.sub(r"\$\w+", "\x00", node)
    pattern = re.escape(pattern).replace(r"\*", "[^.]*").replace("\x00", "[^.]*")
    pattern = re.sub(r"\\\{([^}]*)\\\}", lambda m: "(?:" + m.group(1).replace(",", "|") + ")", pattern)
    return re.compile(pattern)


def graphite_defines(path: str, *, find: bool = False) -> bool:
    """Whether `path` names series of the contract (with `find`, a prefix of them: a find query)."""
    nodes = path.replace("$prefix", signals.STATSD_PREFIX).split(".")
    for series in queries.graphite_series(signals.STATSD_PREFIX):
        defined = series.split(".")
        if len(nodes) != len(defined) and not (find and len(nodes) < len(defined)):
            continue
        if all(d == "*" or node_pattern(n).fullmatch(d) for n, d in zip(nodes, defined, strict=False)):
            return True
    return False


def recorded_by_rules() -> set[str]:
    return {
        rule["record"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def known_prometheus_series() -> set[str]:
    return queries.prometheus_series() | recorded_by_rules()


def dashboard_queries():
    """(where, datasource type, query, is a find query) of every dashboard query and query variable."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                yield (
                    f"{path.name} ${variable['name']}",
                    variable["datasource"]["type"],
                    variable["query"],
                    True,
                )
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                kind = target["datasource"]["type"]
                query = target["expr"] if kind == "prometheus" else target["target"]
                yield f"{path.name} {panel['title']!r}", kind, query, False


def rule_expressions():
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield f"{path.name} {rule.get('record') or rule.get('alert')}", rule["expr"]


def label_values_selector(query: str) -> str:
    """label_values(selector, label) -> selector: the series a Prometheus variable reads."""
    return re.fullmatch(r"label_values\((.+), \w+\)", query).group(1)


def test_every_series_a_dashboard_queries_is_in_the_contract():
    checked = 0
    for where, kind, query, find in dashboard_queries():
        if kind == "prometheus":
            expr = label_values_selector(query) if find else query
            unknown = promql_series(expr) - known_prometheus_series()
            assert not unknown, f"{where}: {unknown} not in the contract"
        else:
            for path in graphite_paths(query):
                assert graphite_defines(path, find=find), f"{where}: {path} not in the contract"
        checked += 1
    assert checked >= 30


def test_every_series_a_rule_reads_is_in_the_contract():
    for where, expr in rule_expressions():
        unknown = promql_series(expr) - known_prometheus_series()
        assert not unknown, f"{where}: {unknown} not in the contract"


def test_every_series_the_experiment_asks_for_is_in_the_contract():
    asked = experiment.Queries(prefix=signals.STATSD_PREFIX, window="20s").all()
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
