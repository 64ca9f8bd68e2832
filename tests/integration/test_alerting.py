"""Alerts reach someone: an injected fault pages through Alertmanager to the webhook sink.

`lab faults --error-rate 1 --route /` makes AvailabilitySLOFastBurn fire; the
page must reach the sink within a bound made of the rule's `for:` and the
stack's intervals, read from the running Prometheus and Alertmanager. Clearing
the fault resolves it; a silence keeps it from the sink.

These tests count errors against every request the app answered in the last
hour, so they run on a stack of their own: the session's stack has the other
tests' traffic, which would dilute an error burst by an amount no bound knows.
"""

import time

import pytest

from lab import traffic
from lab.backends import Alertmanager, AlertSink, Prometheus
from lab.fault_control import FaultControl

from . import stack as stacks
from .stack import PAGE

TICKET = "AvailabilitySLOSlowBurn"  # the same SLO's ticket: inhibited while the page fires
SLACK_SECONDS = 5.0  # for a loaded machine: a request, a scrape or a send that runs late
ERROR_RATE = 10  # requests/s to / while it fails: a few scrapes' worth make the page fire
GOOD_RATE = 300  # requests/s to / once it is fixed: enough to bring the ratios down in seconds
GIVE_UP_SECONDS = 90


@pytest.fixture(scope="module")
def stack():
    yield from stacks.native_stack()


@pytest.fixture
def faults(stack):
    control = FaultControl(stack.app, stack.admin_token)
    yield control
    control.clear()


def firing(stack, alert: str) -> bool:
    return Prometheus(stack.prometheus).value(f'ALERTS{{alertname="{alert}", alertstate="firing"}}') > 0


def active(stack, alert: str) -> bool:
    """Pending or firing: whether the rule's condition holds."""
    return Prometheus(stack.prometheus).value(f'ALERTS{{alertname="{alert}"}}') > 0


def send_until(stack, done, rate: float) -> float:
    """Send `rate` requests/s to / until `done()`; return when it became true."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while not done():
        assert time.monotonic() < deadline, f"still not done after {GIVE_UP_SECONDS} s of traffic"
        traffic.send(f"{stack.app}/", rate, 1.0)
    return time.time()


def notified(stack, alert: str, status: str, since: float, within: float) -> dict | None:
    """The first notification of `alert` with `status` since `since`, waiting up to `within` s for it."""
    deadline = time.monotonic() + within
    while True:
        for item in AlertSink(stack.alert_sink).notifications(since):
            if any(a["labels"]["alertname"] == alert and a["status"] == status for a in item["alerts"]):
                return item
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def resolve_page(stack) -> float:
    """Serve / right again until the page is over; return when Prometheus resolved it."""
    return send_until(stack, lambda: not active(stack, PAGE), GOOD_RATE)


def test_an_error_fault_pages_within_the_bound_and_resolves_once_fixed(stack, faults):
    evaluation = stack.evaluation_seconds
    group_wait, group_interval = stack.route_timings("page")
    # Until the rule fires, then Alertmanager waits group_wait for more of the group.
    bound = stack.firing_seconds(PAGE) + group_wait + SLACK_SECONDS

    injected = time.time()
    faults.replace({"routes": {"/": {"error_rate": 1}}})  # lab faults --error-rate 1 --route /
    send_until(stack, lambda: firing(stack, PAGE), ERROR_RATE)
    page = notified(stack, PAGE, "firing", injected, within=max(0.0, injected + bound - time.time()))
    assert page is not None, f"no page at the sink {bound:.0f} s after the fault"
    assert page["received_at"] - injected <= bound
    assert page["receiver"] == "page"
    (alert,) = page["alerts"]
    assert alert["labels"] == {"alertname": PAGE, "severity": "page", "slo": "availability", "job": "app"}
    # The same burst is a slow burn too: Alertmanager holds that ticket back while the page is on.
    # Its windows (1 d, 2 h) are recorded once a minute: it may fire up to a minute after the page.
    alertmanager = Alertmanager(stack.alertmanager)
    ticket_bound = stack.firing_seconds(TICKET) + SLACK_SECONDS
    send_until(stack, lambda: alertmanager.alerts(alertname=TICKET), ERROR_RATE)
    assert time.time() - injected <= ticket_bound
    (ticket,) = alertmanager.alerts(alertname=TICKET)
    assert ticket["status"]["state"] == "suppressed"
    assert ticket["status"]["inhibitedBy"] == [alert["fingerprint"]]
    assert notified(stack, TICKET, "firing", injected, within=0) is None

    faults.clear()
    resolved_at = resolve_page(stack)
    # Prometheus sends the resolved alert at its next evaluation; Alertmanager tells the
    # receiver at the group's next flush.
    resolved = notified(stack, PAGE, "resolved", injected, within=evaluation + group_interval + SLACK_SECONDS)
    assert resolved is not None, "the page never resolved at the sink"
    assert resolved["receiver"] == "page"
    assert resolved["received_at"] - resolved_at <= evaluation + group_interval + SLACK_SECONDS


def test_a_silence_keeps_the_page_from_the_sink(stack, faults):
    alertmanager = Alertmanager(stack.alertmanager)
    group_wait, group_interval = stack.route_timings("page")
    silence = alertmanager.silence(10, "integration test: fault injected on purpose", alertname=PAGE)
    try:
        started = time.time()
        faults.replace({"routes": {"/": {"error_rate": 1}}})
        send_until(stack, lambda: firing(stack, PAGE), ERROR_RATE)
        # Prometheus sent it, and Alertmanager holds it under the silence ...
        deadline = time.monotonic() + 10
        while not (alerts := alertmanager.alerts(alertname=PAGE)) and time.monotonic() < deadline:
            time.sleep(0.2)
        (alert,) = alerts
        assert alert["status"] == {"state": "suppressed", "silencedBy": [silence], "inhibitedBy": []}
        # ... for as long as a notification would have taken, and then some.
        assert (
            notified(stack, PAGE, "firing", started, within=group_wait + group_interval + SLACK_SECONDS)
            is None
        )
    finally:
        alertmanager.expire(silence)
        faults.clear()
    resolve_page(stack)
