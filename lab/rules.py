"""The rules Prometheus loads (prometheus.yml's `rule_files`: prometheus/rules/*.yml).

The experiment (which alerts to look for), the dashboards' generator (where an
alert fires, the SLOs' budgets) and the tests read them here, from the files
Prometheus itself loads.
"""

import yaml

from .settings import ROOT

RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))


def rules(kind: str) -> list[dict]:
    """Every rule of a kind ("alert" or "record") in the rule files, in their order."""
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if kind in rule
    ]


def rule(kind: str, name: str) -> dict:
    """The one rule of a kind ("alert" or "record") with this name."""
    (found,) = [rule for rule in rules(kind) if rule[kind] == name]
    return found
