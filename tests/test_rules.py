"""The Prometheus rules: `promtool check rules` accepts them, and `promtool test rules`
shows each alert firing when it should and silent when it should not."""

import re
import shutil
import subprocess

import pytest
import yaml

from lab.contract import promql_series
from lab.rules import RECORDED, RULE_FILES, SLO_WINDOW, group_of, groups, rule, rules, slos
from lab.settings import duration_seconds

from .helpers import ROOT

PROMETHEUS = ROOT / "prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool_binary() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make deps` installs it (Debian's prometheus package)")
    return binary


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool_binary(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


@pytest.mark.processes
def test_promtool_accepts_the_rules():
    assert RULE_FILES
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.processes
def test_promtool_unit_tests_pass():
    """Each test file in a promtool of its own, all at once: the month-long cases take seconds each."""
    assert RULE_TESTS
    command = [promtool_binary(), "test", "rules"]
    running = {
        path.name: subprocess.Popen(
            [*command, str(path)], cwd=PROMETHEUS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for path in RULE_TESTS
    }
    failed = {}
    for name, test in running.items():
        output, _ = test.communicate(timeout=120)
        if test.returncode != 0:
            failed[name] = output
    assert not failed, "\n".join(failed.values())


def test_prometheus_loads_the_rules_directory():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]


def test_every_alert_has_a_severity_a_summary_and_a_description():
    alerts = rules("alert")
    names = {rule["alert"] for rule in alerts}
    for expected in ("TargetDown", "HighErrorRatio", "HighLatency", "Saturation"):
        assert expected in names
    assert any("SLO" in name and "Burn" in name for name in names)
    for alert in alerts:
        assert alert["labels"]["severity"] in {"page", "ticket", "warning"}, alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], alert["alert"]


def test_every_alert_is_unit_tested():
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in rules("alert")} <= tested


# A range selector: the series (maybe with matchers) and its duration, `x{...}[30d]`.
RANGE = re.compile(r"([a-zA-Z_:][\w:]*)\s*(?:\{[^}]*\})?\s*\[(\w+)\]")
# The longest window the page reads (its 6 h, 6x clause): the longest a rule may read raw samples over.
PAGE_WINDOW = "6h"


def ranges(expr: str) -> list[tuple[str, float]]:
    return [(name, duration_seconds(window)) for name, window in RANGE.findall(expr)]


def test_no_rule_reads_more_than_six_hours_of_a_scraped_series():
    """Past the page's 6 h a window reads the recorded 5-minute rates (a colon in the name), never a
    counter of the app: rate(http_requests_total[30d]) read every raw sample of every series of it."""
    longest = duration_seconds(PAGE_WINDOW)
    too_long = [
        (rule.get("record") or rule.get("alert"), name, seconds)
        for rule in rules("record") + rules("alert")
        for name, seconds in ranges(rule["expr"])
        if seconds > longest and not re.fullmatch(RECORDED, name)
    ]
    assert too_long == []
    # and the long windows are there: the 30-day budget and the ticket's day, from recorded rates
    for slo in slos():
        for window in ("2h", "1d", SLO_WINDOW):
            read = ranges(rule("record", slo.over(window))["expr"])
            assert {seconds for _, seconds in read} == {duration_seconds(window)}, slo.over(window)
            assert all(re.fullmatch(RECORDED, name) and name.endswith(":rate5m") for name, _ in read)


def test_the_long_windows_run_once_a_minute_and_the_page_at_every_evaluation():
    """A group's rules run one after another: a slow rule delays every rule after it in its group. So
    the windows past the page's sit in groups of their own with an `interval`, and everything a page
    reads is recorded in a group at the global evaluation interval (no `interval`)."""
    for slo in slos():
        for window in ("2h", "1d", SLO_WINDOW):
            group = group_of("record", slo.over(window))
            assert duration_seconds(group.get("interval", "0s")) >= 60, group["name"]
    pages = [alert for alert in rules("alert") if alert["labels"]["severity"] == "page"]
    assert pages
    for alert in pages:
        recorded = [name for name in promql_series(alert["expr"]) if re.fullmatch(RECORDED, name)]
        for name in recorded:
            group = group_of("record", name)
            assert "interval" not in group, f"{alert['alert']} reads {name} from {group['name']}"
            assert not any(
                seconds > duration_seconds(PAGE_WINDOW) for _, seconds in ranges(rule("record", name)["expr"])
            )
    # the page's fast groups: their rules read no window longer than the page's
    for group in groups():
        records = [r for r in group["rules"] if "record" in r]
        if "interval" not in group and any(r["record"].startswith("job:slo_") for r in records):
            windows = [seconds for r in records for _, seconds in ranges(r["expr"])]
            assert max(windows) == duration_seconds(PAGE_WINDOW), group["name"]


def test_every_promtool_test_runs_each_group_after_the_groups_it_reads():
    """promtool runs groups in any order at one evaluation time unless group_eval_order says: a group
    reading a series recorded in another group run after it would miss that evaluation's sample
    (a 1-day ratio off by one 5-minute rate, now and then)."""
    recorder = {r["record"]: group["name"] for group in groups() for r in group["rules"] if "record" in r}
    for path in RULE_TESTS:
        test = yaml.safe_load(path.read_text())
        loaded = [
            group
            for rule_file in test["rule_files"]
            for group in yaml.safe_load((path.parent / rule_file).read_text())["groups"]
        ]
        order = test.get("group_eval_order", [])
        assert sorted(order) == sorted(group["name"] for group in loaded), path.name
        for group in loaded:
            reads = {name for r in group["rules"] for name in promql_series(r["expr"]) if name in recorder}
            for name in reads:
                if recorder[name] != group["name"]:
                    assert order.index(recorder[name]) < order.index(group["name"]), (
                        path.name,
                        group["name"],
                        name,
                    )
