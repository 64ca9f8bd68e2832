"""Readers of what names the contract's series: the dashboards' queries, the rules' expressions, a
PromQL expression's series, a Graphite target's paths. The contract test (nothing names a series
app/signals.py does not define) and `lab where` (who uses a name) both read through these.

    promql_series('sum(rate(http_requests_total{route="/"}[5m]))')  # {"http_requests_total"}
    graphite_paths("sumSeries(stats.lab.app.http.requests.index.*.*)")
    graphite_defines("stats.timers.$prefix.http.latency.$endpoint.*.upper_90")  # True
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from app import signals

from . import host, queries
from .rules import rules
from .settings import ROOT

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_OPERATORS = {"or", "and", "unless", "offset", "bool", "inf", "nan"}
GRAPHITE_NODE = r"(?:[\w$*\-]|\{[^}]*\})+"
GRAPHITE_PATH = re.compile(rf"{GRAPHITE_NODE}(?:\.{GRAPHITE_NODE})+")


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


def graphite_paths(target: str) -> list[str]:
    """The series paths a Graphite target names (quoted aliases left out)."""
    found = GRAPHITE_PATH.findall(re.sub(r"'[^']*'", "''", target))
    return [path for path in found if not re.fullmatch(r"-?[\d.]+", path)]  # numbers: scale(..., -0.01)


def node_pattern(node: str) -> re.Pattern:
    """A Graphite glob node (`5*`, `{mean,upper_90}`, a `$variable`) as a regex."""
    pattern = re.sub(r"\$\w+", "\x00", node)
    pattern = re.escape(pattern).replace(r"\*", "[^.]*").replace("\x00", "[^.]*")
    pattern = re.sub(r"\\\{([^}]*)\\\}", lambda m: "(?:" + m.group(1).replace(",", "|") + ")", pattern)
    return re.compile(pattern)


def graphite_matches(path: str, series: str, *, find: bool = False) -> bool:
    """Whether a Graphite path (with globs and `$variables`) names the contract series `series` (a
    template whose `*` nodes stand for any value); with `find`, whether it names a prefix of it."""
    nodes = path.replace("$prefix", signals.STATSD_PREFIX).split(".")
    defined = series.split(".")
    if len(nodes) != len(defined) and not (find and len(nodes) < len(defined)):
        return False
    # A defined node may hold a glob of its own within it (collectd's `percent-*`): it matches either way.
    return all(
        d == "*" or node_pattern(n).fullmatch(d) or node_pattern(d).fullmatch(n)
        for n, d in zip(nodes, defined, strict=False)
    )


def graphite_defines(path: str, *, find: bool = False) -> bool:
    """Whether `path` names series of the contract (with `find`, a prefix of them: a find query)."""
    return any(graphite_matches(path, series, find=find) for series in graphite_series(signals.STATSD_PREFIX))


def prometheus_series() -> set[str]:
    """Every series name the contract defines in Prometheus (and Prometheus's own `up`)."""
    pushed = (instrument.metric for instrument in signals.OTEL_INSTRUMENTS)
    return {
        "up",
        *(series for metric in (*signals.PULL_METRICS, *pushed) for series in metric.series()),
        *host.NODE_SERIES,
    }


def graphite_series(prefix: str) -> set[str]:
    """Every Graphite series the contract defines under `prefix`, a `*` for each free node, and the
    host's from collectd (lab/host.py)."""
    names = {queries.STATSD_OWN_SERIES}
    for template in host.COLLECTD_TEMPLATES:
        free_nodes = template.format(state="*", kind="*", disk="*", direction="*", interface="*", term="*")
        names.add(f"{host.COLLECTD_PREFIX}.*.{free_nodes}")
    free = {
        kind: [queries.with_free_nodes(t) for t in templates]
        for kind, templates in signals.STATSD_NAMES.items()
    }
    for name in free["counter"]:
        names |= {f"{queries.PER_SECOND}.{prefix}.{name}", f"{queries.COUNTS}.{prefix}.{name}"}
    for name in free["timer"]:
        names.add(f"{queries.TIMERS}.{prefix}.{name}.*")  # mean, upper_90, count, ...
    for name in free["gauge"]:
        names.add(f"{queries.GAUGES}.{prefix}.{name}")
    return names


def recorded_by_rules() -> set[str]:
    """The series the recording rules write."""
    return {rule["record"] for rule in rules("record")}


def known_prometheus_series() -> set[str]:
    return prometheus_series() | recorded_by_rules()


class Query(NamedTuple):
    """One query a dashboard sends: where it is, which datasource type reads it, and whether it is a
    query variable's (a Graphite find, a Prometheus label_values)."""

    dashboard: Path
    panel: str | None  # None: a variable's
    where: str  # "board.json 'Panel title'" or "board.json $variable"
    kind: str  # prometheus or graphite
    text: str
    find: bool


def dashboard_queries() -> Iterator[Query]:
    """Every dashboard query and query variable of the committed dashboards."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                where = f"{path.name} ${variable['name']}"
                yield Query(path, None, where, variable["datasource"]["type"], variable["query"], True)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                kind = target["datasource"]["type"]
                query = target["expr"] if kind == "prometheus" else target["target"]
                yield Query(path, panel["title"], f"{path.name} {panel['title']!r}", kind, query, False)


def rule_expressions() -> Iterator[tuple[str, str]]:
    """(its name, its expression) of every recording and alerting rule."""
    for rule in rules("record") + rules("alert"):
        yield rule.get("record") or rule.get("alert"), rule["expr"]


def label_values_selector(query: str) -> str:
    """label_values(selector, label) -> selector: the series a Prometheus variable reads."""
    return re.fullmatch(r"label_values\((.+), \w+\)", query).group(1)


def query_series(query: Query) -> set[str]:
    """The Prometheus series a PromQL query of a dashboard selects (a variable's selector, too)."""
    return promql_series(label_values_selector(query.text) if query.find else query.text)
