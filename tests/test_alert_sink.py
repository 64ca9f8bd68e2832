"""The webhook sink keeps what Alertmanager sends, answers bad input with a 400, and `lab alerts` shows it."""

import threading

import pytest
import requests

from lab import alerts
from lab.backends import AlertSink
from lab.stack import alert_sink

from .helpers import free_port

FIRING = {
    "version": "4",
    "receiver": "page",
    "status": "firing",
    "groupLabels": {"alertname": "AvailabilitySLOFastBurn"},
    "commonLabels": {"alertname": "AvailabilitySLOFastBurn", "severity": "page", "job": "app"},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "AvailabilitySLOFastBurn",
                "severity": "page",
                "job": "app",
                "slo": "availability",
            },
            "annotations": {"summary": "app burns its 99.5 % availability budget fast"},
            "startsAt": "2026-12-01T14:04:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "c0ffee",
        }
    ],
}


@pytest.fixture
def sink():
    port = free_port()
    server = alert_sink.serve("127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_a_notification_is_kept_with_when_it_arrived(sink):
    assert AlertSink(sink).notifications() == []
    assert requests.post(f"{sink}/webhook", json=FIRING, timeout=5).status_code == 200
    (kept,) = AlertSink(sink).notifications()
    assert kept["receiver"] == "page" and kept["status"] == "firing"
    assert kept["groupLabels"] == {"alertname": "AvailabilitySLOFastBurn"}
    (alert,) = kept["alerts"]
    assert alert["labels"]["severity"] == "page"
    assert alert["annotations"]["summary"].startswith("app burns")
    assert "generatorURL" not in alert  # only what a reader of the sink needs
    assert AlertSink(sink).notifications(since=kept["received_at"]) == []
    assert AlertSink(sink).notifications(since=kept["received_at"] - 1) == [kept]


def test_only_the_last_ones_are_kept():
    kept = alert_sink.Notifications(kept=3)
    for second in range(5):
        kept.add({"received_at": float(second)})
    assert [item["received_at"] for item in kept.since(None)] == [2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"not json", "Expecting value"),
        (b"[]", "expected a JSON object"),
        (b'{"receiver": "page", "status": "firing"}', "expected `alerts`"),
        (b'{"receiver": "page", "status": "firing", "alerts": [1]}', "expected `alerts`"),
        (b'{"status": "firing", "alerts": []}', "expected `receiver`"),
    ],
)
def test_a_body_that_is_not_a_webhook_payload_is_a_400_saying_why(sink, body, message):
    response = requests.post(f"{sink}/webhook", data=body, timeout=5)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert AlertSink(sink).notifications() == []  # nothing half-kept


def test_wrong_paths_and_a_bad_since_are_named(sink):
    assert requests.post(f"{sink}/alerts", json=FIRING, timeout=5).status_code == 404
    assert requests.get(f"{sink}/nothing", timeout=5).status_code == 404
    response = requests.get(f"{sink}/notifications", params={"since": "yesterday"}, timeout=5)
    assert response.status_code == 400
    assert "since='yesterday'" in response.json()["error"]
    assert requests.get(f"{sink}/healthz", timeout=5).json() == {"status": "ok"}


def test_lab_alerts_prints_each_notification_and_its_alerts(sink, capsys):
    assert alerts.main(AlertSink(sink), None, as_json=False) == 0
    assert "no notifications yet" in capsys.readouterr().out
    requests.post(f"{sink}/webhook", json=FIRING, timeout=5)
    requests.post(
        f"{sink}/webhook",
        json={**FIRING, "status": "resolved", "alerts": [{**FIRING["alerts"][0], "status": "resolved"}]},
        timeout=5,
    )
    assert alerts.main(AlertSink(sink), 5, as_json=False) == 0
    first, alert, second, resolved = capsys.readouterr().out.splitlines()
    assert "to page  FIRING  (alertname=AvailabilitySLOFastBurn)" in first
    assert alert.split()[:3] == ["FIRING", "page", "AvailabilitySLOFastBurn"]
    assert "job=app, slo=availability" in alert and alert.endswith("availability budget fast")
    assert "RESOLVED" in second and resolved.split()[0] == "RESOLVED"


def test_lab_alerts_names_a_sink_that_does_not_answer(capsys):
    from lab.__main__ import main

    nobody = f"http://127.0.0.1:{free_port()}"
    assert main(["alerts", "--sink", nobody]) == 1
    assert f"{nobody} does not answer: is the stack running" in capsys.readouterr().err
