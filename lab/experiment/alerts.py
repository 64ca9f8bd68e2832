"""When each alert fired during a run (Prometheus's ALERTS), and when its notification reached the sink
(or why it did not)."""

import math
from collections.abc import Callable

import requests

from ..backends import BackendError
from ..rules import rules
from .result import Firing

# The step at which a run reads ALERTS: when an alert fired is known to a second, as a detection
# delay is to a poll. Prometheus answers at most 11,000 points a series: a longer run, a longer step.
ALERT_STEP_SECONDS, MAX_POINTS = 1.0, 11_000


def alert_severities() -> dict[str, str]:
    """Each alert the stack's Prometheus evaluates (lab/rules.py) -> its severity label ("" if none)."""
    return {rule["alert"]: rule.get("labels", {}).get("severity", "") for rule in rules("alert")}


def firing_spans(
    times: list[float], start: float, end: float, step: float
) -> list[tuple[float | None, float | None]]:
    """(fired, resolved) of each unbroken run of `times`, the points of a range query `step` apart.

    Each is the first point that showed the change: fired None when the alert was
    firing at `start` already, resolved None when it still was at `end`.
    """
    runs: list[list[float]] = []
    for t in times:
        if runs and t - runs[-1][1] < 1.5 * step:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return [
        (None if first < start + step / 2 else first, None if last > end - step else last + step)
        for first, last in runs
    ]


def note_notifications(firings: list[Firing], notifications: list[dict], slack: float) -> None:
    """Set when each firing's notifications reached the sink: the first of its alert after it fired
    (firing) or resolved (resolved), before the same alert fired again.

    `slack`: how much earlier than `fired_at` and `resolved_at` the change may have
    happened (they are the first points that showed it).
    """
    for firing in firings:
        later = [f.fired_at for f in firings if f.alertname == firing.alertname and f is not firing]
        before = min((t for t in later if t is not None and t > (firing.fired_at or 0)), default=math.inf)
        if firing.fired_at is not None:
            firing.notified_at = first_received(
                notifications, firing.alertname, "firing", firing.fired_at - slack, before
            )
        if firing.resolved_at is not None:
            firing.resolved_notified_at = first_received(
                notifications, firing.alertname, "resolved", firing.resolved_at - slack, before
            )


def first_received(
    notifications: list[dict], alertname: str, status: str, after: float, before: float
) -> float | None:
    """When the sink first received alert `alertname` with `status` between `after` and `before`."""
    return next(
        (
            item["received_at"]
            for item in notifications
            if after <= item["received_at"] < before
            and any(
                alert["status"] == status and alert["labels"].get("alertname") == alertname
                for alert in item["alerts"]
            )
        ),
        None,
    )


def why_not_notified(alertname: str, held: list[dict]) -> str:
    """Why no notification of `alertname` reached the sink, from the alerts Alertmanager holds now."""
    names = {alert["fingerprint"]: alert["labels"].get("alertname", "?") for alert in held}
    statuses = [alert["status"] for alert in held if alert["labels"].get("alertname") == alertname]
    inhibitors = sorted({names.get(fp, fp) for status in statuses for fp in status.get("inhibitedBy") or []})
    silences = sorted({silence for status in statuses for silence in status.get("silencedBy") or []})
    if inhibitors:
        return f"inhibited by {', '.join(inhibitors)}"
    if silences:
        return f"silenced by silence {', '.join(silences)}"
    if statuses:
        return f"Alertmanager still holds it ({statuses[0]['state']}) at the end of the run"
    return "Alertmanager no longer holds it"


def answer_or_reason(ask: Callable) -> tuple[object, str | None]:
    """(`ask()`'s answer, None), or (None, why the service gave none): the run goes on without it."""
    try:
        return ask(), None
    except BackendError as error:
        return None, str(error)
    except requests.RequestException as error:
        url = error.request.url if error.request is not None else "it"
        return None, f"{url} does not answer ({type(error).__name__})"
