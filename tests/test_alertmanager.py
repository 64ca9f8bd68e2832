"""Alertmanager's configuration: amtool accepts it, and every alert the rules define is routed on purpose.

`amtool config routes test` walks the routing tree with an alert's labels, as
Alertmanager does, and names the receiver it ends at.
"""

import shutil
import subprocess

import pytest
import yaml

from lab.rules import rules

from .helpers import ROOT

ALERTMANAGER_YML = ROOT / "alertmanager" / "alertmanager.yml"
# Where each alert of prometheus/rules/alerts.yml must end: a new alert fails here until it is routed.
RECEIVERS = {
    "TargetDown": "page",
    "AvailabilitySLOFastBurn": "page",
    "LatencySLOFastBurn": "page",
    "AvailabilitySLOSlowBurn": "ticket",
    "LatencySLOSlowBurn": "ticket",
    "HighErrorRatio": "warning",
    "HighLatency": "warning",
    "Saturation": "warning",
    "WorkerCPUSaturated": "warning",
    "WorkerMemoryHigh": "warning",
}


def amtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("amtool")
    if binary is None:
        pytest.fail("amtool is missing: `make deps` installs it (Debian's prometheus-alertmanager package)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def receiver_of(labels: dict[str, str]) -> str:
    """The receiver Alertmanager picks for an alert with these labels."""
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_YML}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.processes
def test_amtool_accepts_the_config():
    result = amtool("check-config", str(ALERTMANAGER_YML))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_of_the_rules_has_its_receiver_here():
    assert {rule["alert"] for rule in rules("alert")} == set(RECEIVERS)


@pytest.mark.processes
@pytest.mark.parametrize("rule", rules("alert"), ids=lambda rule: rule["alert"])
def test_each_alert_reaches_its_receiver(rule):
    # The labels Prometheus sends: the rule's own, its name, and those of the series it fired on.
    labels = {"alertname": rule["alert"], "job": "app", "route": "/", **rule["labels"]}
    assert receiver_of(labels) == RECEIVERS[rule["alert"]]


@pytest.mark.processes
def test_an_alert_nobody_planned_for_lands_in_unrouted():
    assert receiver_of({"alertname": "SomethingNew", "severity": "page2"}) == "unrouted"
    # a warning is routed by name too: a new warning must be added on purpose
    assert receiver_of({"alertname": "SomethingNew", "severity": "warning"}) == "unrouted"


def test_pages_and_tickets_go_to_different_receivers_grouped_by_alert_and_route():
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    assert config["route"]["group_by"] == ["alertname", "route"]
    webhooks = {receiver["name"]: receiver["webhook_configs"] for receiver in config["receivers"]}
    assert set(webhooks) == {"page", "ticket", "warning", "unrouted"}
    # every receiver is the lab's sink, and says when its alert is over
    for name, configs in webhooks.items():
        assert configs == [{"url": "http://alert-sink:9095/webhook", "send_resolved": True}], name


def test_a_page_inhibits_the_ticket_of_the_same_slo():
    (inhibit,) = yaml.safe_load(ALERTMANAGER_YML.read_text())["inhibit_rules"]
    assert 'severity="page"' in inhibit["source_matchers"]
    assert inhibit["target_matchers"] == ['severity="ticket"']
    assert set(inhibit["equal"]) == {"slo", "job"}
    slo_alerts = {rule["alert"]: rule["labels"] for rule in rules("alert") if "slo" in rule["labels"]}
    # each ticket has a page of the same SLO to be inhibited by
    for labels in slo_alerts.values():
        if labels["severity"] == "ticket":
            assert {"severity": "page", "slo": labels["slo"]} in [
                {"severity": other["severity"], "slo": other["slo"]} for other in slo_alerts.values()
            ]
