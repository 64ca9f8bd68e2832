"""The Prometheus rules: `promtool check rules` accepts them, and `promtool test rules`
shows each alert firing when it should and silent when it should not."""

import shutil
import subprocess

import pytest
import yaml

from lab.rules import RULE_FILES, rules

from .helpers import ROOT

PROMETHEUS = ROOT / "prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make deps` installs it (Debian's prometheus package)")
    return subprocess.run([binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


@pytest.mark.processes
def test_promtool_accepts_the_rules():
    assert RULE_FILES
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.processes
def test_promtool_unit_tests_pass():
    assert RULE_TESTS
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loads_the_rules_directory():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]


def test_every_alert_has_a_severity_a_summary_and_a_description():
    alerts = rules("alert")
    names = {rule["alert"] for rule in alerts}
    for expected in ("TargetDown", "HighErrorRatio", "HighLatency", "Saturation"):
        assert expected in names
    assert any("SLO" in name and "Burn" in name for name in names)
    for rule in alerts:
        assert rule["labels"]["severity"] in {"page", "ticket", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_every_alert_is_unit_tested():
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in rules("alert")} <= tested
