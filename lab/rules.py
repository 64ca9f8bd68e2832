"""The rules Prometheus loads (prometheus.yml's `rule_files`: prometheus/rules/*.yml), read here only.

The experiment (which alerts to look for), the dashboards' generator (where an
alert fires, the SLOs' budgets and burn-rate factors, so that a panel turns red
where an alert fires and editing a rule edits its dashboards), `lab where` and
the tests read them here, from the files Prometheus itself loads.

    threshold("Saturation")           # 0.8, from `job:http_requests_saturation:ratio > 0.8`
    route_thresholds("HighLatency")   # (0.5, {"/database/": 3.0})
    [slo.name for slo in slos()]      # ["availability", "latency"]
"""

import re
from typing import NamedTuple

import yaml

from .settings import ROOT, duration_seconds

RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))


def groups() -> list[dict]:
    """Every rule group of the rule files, in their order: name, rules, and `interval` where it has one
    (without, a group runs at prometheus.yml's evaluation_interval)."""
    return [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]


def rules(kind: str) -> list[dict]:
    """Every rule of a kind ("alert" or "record") in the rule files, in their order."""
    return [rule for group in groups() for rule in group["rules"] if kind in rule]


def group_of(kind: str, name: str) -> dict:
    """The group the one rule of a kind with this name is in."""
    (found,) = [group for group in groups() for rule in group["rules"] if rule.get(kind) == name]
    return found


def rule(kind: str, name: str) -> dict:
    """The one rule of a kind ("alert" or "record") with this name."""
    (found,) = [rule for rule in rules(kind) if rule[kind] == name]
    return found


# The window an SLO is kept over, as the recorded ratios name it (golden-signals.yml's ..._rate30d).
SLO_WINDOW = "30d"
# A recorded series' name, level:metric:operations (a plain metric has no colon).
RECORDED = r"\b[a-z_]+:[a-z_]+:\w+"
# A threshold an alert compares with: `> 0.05`.
ABOVE = r">\s*([0-9.]+)"
# A burn-rate clause of an SLO alert: `job:slo_..._errors:ratio_rate1h > (14.4 * 0.005)`.
BURN = re.compile(r"(\w+:\w+:ratio_rate)(\w+)\s*>\s*\(([0-9.]+)\s*\*\s*([0-9.]+)\)")


def alert(name: str) -> dict:
    return rule("alert", name)


def threshold(name: str) -> float:
    """The one number an alert's expression compares with."""
    (value,) = {float(number) for number in re.findall(ABOVE, alert(name)["expr"])}
    return value


def route_thresholds(name: str) -> tuple[float, dict[str, float]]:
    """An alert's threshold for most routes, and for the routes it treats apart.

    From `...{route!="/database/"} > 0.5 or ...{route="/database/"} > 3`: (0.5, {"/database/": 3}).
    """
    clauses = re.findall(r'\{route(!?=)"([^"]+)"\}\s*' + ABOVE, alert(name)["expr"])
    (default,) = {float(value) for op, _, value in clauses if op == "!="}
    return default, {route: float(value) for op, route, value in clauses if op == "="}


class Slo(NamedTuple):
    """An SLO as its burn-rate alerts define it (the alerts' `slo` label names it)."""

    name: str
    ratio: str  # the recorded share of bad requests, less its window: job:slo_..._errors:ratio_rate
    budget: float  # the share of requests allowed to be bad: 1 - the objective
    page_burn: float  # the fast-burn page's factor on its fastest windows
    page_windows: tuple[str, ...]  # those windows: the long one (1h), then the short one (5m)
    ticket_burn: float  # the factor the slow-burn ticket fires at

    def over(self, window: str) -> str:
        """The recorded share of bad requests over a window (5m, 1h, ... 30d)."""
        return self.ratio + window

    def matcher(self, label: str) -> str:
        """The value its recorded ratio selects a label on (the latency SLO's route and `le`), in the
        5-minute ratio's expression or in the recorded rates it divides."""
        ratio = rule("record", self.over("5m"))["expr"]
        read = [rule("record", name)["expr"] for name in re.findall(RECORDED, ratio)]
        return re.search(rf'\b{label}="([^"]*)"', "\n".join([ratio, *read]))[1]


def burns(expr: str) -> dict[str, tuple[str, float, float]]:
    """Window -> (ratio, factor, budget) of each burn-rate clause of an alert."""
    clauses = BURN.findall(expr)
    return {window: (ratio, float(factor), float(budget)) for ratio, window, factor, budget in clauses}


def slos() -> list[Slo]:
    """Each SLO the alerts page and ticket on, in the order of its first alert."""
    found: dict[str, dict[str, dict]] = {}
    for alert_rule in rules("alert"):
        labels = alert_rule["labels"]
        if "slo" in labels:
            found.setdefault(labels["slo"], {})[labels["severity"]] = burns(alert_rule["expr"])
    return [_slo(name, by_severity["page"], by_severity["ticket"]) for name, by_severity in found.items()]


def _slo(name: str, page: dict, ticket: dict) -> Slo:
    clauses = [*page.values(), *ticket.values()]
    (ratio,) = {ratio for ratio, _, _ in clauses}  # every window of one recorded ratio
    (budget,) = {budget for _, _, budget in clauses}  # against one budget
    (ticket_burn,) = {factor for _, factor, _ in ticket.values()}
    page_burn = max(factor for _, factor, _ in page.values())
    page_windows = tuple(window for window, (_, factor, _) in page.items() if factor == page_burn)
    return Slo(name, ratio, budget, page_burn, page_windows, ticket_burn)


def interval_seconds(group: dict, evaluation: float, running: dict[str, float] | None = None) -> float:
    """How often a group runs: as a running Prometheus says (`running`: group name -> seconds, from
    its /api/v1/rules), else its `interval`, or the global `evaluation` interval where it has none."""
    if running and group["name"] in running:
        return running[group["name"]]
    return duration_seconds(group["interval"]) if "interval" in group else evaluation


def recording_lag(name: str, evaluation: float, running: dict[str, float] | None = None) -> float:
    """The longest a recorded series lags the samples it is computed from: one run of its group, plus
    the lag of the recorded series it reads from other groups. A rule earlier in its own group adds
    nothing: a group's rules run in order at one evaluation, each reading what the ones before wrote."""
    group = group_of("record", name)
    own = interval_seconds(group, evaluation, running)
    upstream = [
        recording_lag(read, evaluation, running)
        - (own if group_of("record", read)["name"] == group["name"] else 0)
        for read in set(re.findall(RECORDED, rule("record", name)["expr"]))
    ]
    return own + max(upstream, default=0)
