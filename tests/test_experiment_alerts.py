"""`lab experiment` records when each alert fired during the run (Prometheus's `ALERTS`)
and when its notification reached the webhook sink, or why none did: an alert already
firing when the run started is said to be, not "fired at 0"; an inhibited one is "not
notified" with Alertmanager's reason; a sink or an Alertmanager that does not answer
leaves its times out and says why, and the run goes on. No live stack: a fake ALERTS
series, the lab's real sink in a thread, and a fake Alertmanager's answer."""

import json
import re
import time

import pytest
import requests

from lab.__main__ import main
from lab.backends import Alertmanager, AlertSink
from lab.experiment import run
from lab.experiment.alerts import alert_severities, firing_spans, note_notifications
from lab.experiment.result import Firing, Plan, Result, save
from lab.experiment.run import Experiment, ExperimentError

from . import test_alert_sink
from .helpers import free_port
from .test_alert_sink import FIRING
from .test_experiment_run import an_experiment

sink = test_alert_sink.sink  # the fixture: the lab's sink in a thread, on a free port

PAGE, TICKET = "AvailabilitySLOFastBurn", "AvailabilitySLOSlowBurn"
STEP = 1.0  # ALERT_STEP_SECONDS: a run this short reads ALERTS every second


class FakePrometheus:
    """ALERTS as a range query sees them: alertname -> the seconds after `start` it was firing at."""

    def __init__(self, firing: dict[str, range]):
        self.firing = firing

    def series(self, query: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        assert step == STEP and 'alertstate="firing"' in query
        name = re.search(r'alertname="([^"]+)"', query)[1]
        return [(start + second, 1.0) for second in self.firing.get(name, ())]


class FakeAlertmanager:
    """What GET /api/v2/alerts answers: the page, and the ticket it inhibits (same SLO and job)."""

    url = "http://alertmanager"

    def alerts(self, **labels: str) -> list[dict]:
        page = {"labels": {"alertname": PAGE}, "fingerprint": "c0ffee"}
        page["status"] = {"state": "active", "inhibitedBy": [], "silencedBy": []}
        ticket = {"labels": {"alertname": TICKET}, "fingerprint": "7ea"}
        ticket["status"] = {"state": "suppressed", "inhibitedBy": ["c0ffee"], "silencedBy": []}
        return [page, ticket]


def a_run(sink_url: str, alertmanager=None) -> Experiment:
    """An experiment asking the sink at `sink_url`, and the fake Alertmanager unless given another."""
    run = an_experiment(alert_sink=sink_url)
    run.alertmanager = alertmanager or FakeAlertmanager()
    return run


def nobody() -> str:
    return f"http://127.0.0.1:{free_port()}"


def notify(sink_url: str, alertname: str, status: str) -> float:
    """Deliver one notification of `alertname` to the sink, as Alertmanager does; return when it did."""
    alert = {**FIRING["alerts"][0], "status": status, "labels": {"alertname": alertname}}
    payload = {**FIRING, "status": status, "alerts": [alert]}
    assert requests.post(f"{sink_url}/webhook", json=payload, timeout=5).status_code == 200
    (item,) = AlertSink(sink_url).notifications(since=time.time() - 1)[-1:]
    return item["received_at"]


@pytest.fixture
def run_start():
    """A run that started 20 s ago and ends 5 s from now: notifications sent now come during it."""
    return time.time() - 20


# Prometheus over the run: HighLatency firing when it started, resolved 4 s in; the page and its
# ticket fired 5 s in and fire still at the end (25 s in).
ALERTS = {"HighLatency": range(0, 4), PAGE: range(5, 26), TICKET: range(5, 26)}


def test_each_alert_s_firing_and_its_notifications_are_recorded(sink, run_start):
    resolved_sent = notify(sink, "HighLatency", "resolved")
    page_sent = notify(sink, PAGE, "firing")  # the ticket never comes: Alertmanager inhibits it
    run = a_run(sink)
    run.prometheus = FakePrometheus(ALERTS)
    firings, missing = run._alerts(run_start, run_start + 25)
    assert missing == {}
    assert firings == [
        Firing("HighLatency", "warning", True, None, run_start + 4, resolved_notified_at=resolved_sent),
        Firing(PAGE, "page", False, run_start + 5, None, notified_at=page_sent),
        Firing(TICKET, "ticket", False, run_start + 5, None, not_notified=f"inhibited by {PAGE}"),
    ]


def test_a_sink_that_does_not_answer_leaves_the_notification_times_out_and_says_why(run_start):
    sink_url = nobody()
    run = a_run(sink_url, alertmanager=Alertmanager(nobody()))
    run.prometheus = FakePrometheus(ALERTS)
    firings, missing = run._alerts(run_start, run_start + 25)
    assert [(f.alertname, f.fired_at) for f in firings][1:] == [
        (PAGE, run_start + 5),
        (TICKET, run_start + 5),
    ]
    assert all(f.notified_at is None and f.not_notified is None for f in firings)
    assert list(missing) == ["alert_sink"]  # Alertmanager was not asked: nothing to explain
    assert re.fullmatch(
        rf"{sink_url}/notifications\?since=\S+ does not answer \(ConnectionError\)", missing["alert_sink"]
    )


def test_an_alertmanager_that_does_not_answer_leaves_the_reasons_out_and_says_why(sink, run_start):
    page_sent = notify(sink, PAGE, "firing")
    alertmanager = nobody()
    run = a_run(sink, alertmanager=Alertmanager(alertmanager))
    run.prometheus = FakePrometheus(ALERTS)
    firings, missing = run._alerts(run_start, run_start + 25)
    page, ticket = firings[1:]
    assert (page.notified_at, ticket.notified_at, ticket.not_notified) == (page_sent, None, None)
    assert missing == {"alertmanager": f"{alertmanager}/api/v2/alerts does not answer (ConnectionError)"}


def test_firing_spans_say_already_firing_and_still_firing_rather_than_0_and_the_end():
    start, end = 100.0, 120.0  # points at 100, 101, ... 120
    assert firing_spans([], start, end, STEP) == []
    assert firing_spans([100.0, 101.0, 102.0], start, end, STEP) == [(None, 103.0)]
    assert firing_spans([105.0, 106.0, 110.0, 120.0], start, end, STEP) == [
        (105.0, 107.0),
        (110.0, 111.0),
        (120.0, None),
    ]
    assert firing_spans([float(t) for t in range(100, 121)], start, end, STEP) == [(None, None)]


def test_an_alert_that_fires_twice_gets_each_firing_s_own_notifications():
    first, second = Firing(PAGE, "page", False, 10.0, 20.0), Firing(PAGE, "page", False, 30.0, None)
    notifications = [
        {"received_at": at, "alerts": [{"status": status, "labels": {"alertname": PAGE}}]}
        for at, status in ((12.0, "firing"), (21.5, "resolved"), (32.0, "firing"))
    ]
    note_notifications([first, second], notifications, slack=STEP)
    assert (first.notified_at, first.resolved_notified_at, second.notified_at) == (12.0, 21.5, 32.0)


def test_the_alerts_are_those_of_the_rules_with_their_severity():
    severities = alert_severities()
    assert (severities[PAGE], severities[TICKET], severities["HighErrorRatio"]) == (
        "page",
        "ticket",
        "warning",
    )


def test_result_json_holds_the_alert_times(tmp_path):
    firings = [Firing(PAGE, "page", False, 105.0, None, notified_at=107.5)]
    result = Result(Plan({}), {}, 1.0, 1.0, 1.0, 100.0, 130.0, [], {}, firings, {"alertmanager": "down"})
    saved = json.loads(save(result, tmp_path).read_text())
    assert saved["alerts"] == [
        {
            "alertname": PAGE,
            "severity": "page",
            "already_firing": False,
            "fired_at": 105.0,
            "resolved_at": None,
            "notified_at": 107.5,
            "resolved_notified_at": None,
            "not_notified": None,
        }
    ]
    assert saved["alerts_missing"] == {"alertmanager": "down"}


@pytest.mark.parametrize(
    ("options", "alertmanager", "alert_sink"),
    [
        ([], "http://127.0.0.1:19093", "http://127.0.0.1:19095"),
        (["--alertmanager", "http://am:1", "--alert-sink", "http://sink:2"], "http://am:1", "http://sink:2"),
    ],
    ids=["ports of the environment", "options"],
)
def test_lab_experiment_passes_alertmanager_and_the_sink(
    monkeypatch, capsys, options, alertmanager, alert_sink
):
    monkeypatch.setenv("ALERTMANAGER_PORT", "19093")
    monkeypatch.setenv("ALERT_SINK_PORT", "19095")
    passed = {}

    class Stop(Experiment):
        def __init__(self, *args, **kwargs):
            passed.update(kwargs)

        def run(self):
            raise ExperimentError("stopped before any traffic")

    monkeypatch.setattr(run, "Experiment", Stop)
    assert main(["experiment", "--otel", "http://o", *options]) == 1
    assert "stopped before any traffic" in capsys.readouterr().err
    assert passed == {"alertmanager": alertmanager, "alert_sink": alert_sink}
