"""`lab alerts`: the notifications Alertmanager delivered to the lab's webhook sink (lab/stack/alert_sink.py).

lab alerts                 # every notification the sink kept, oldest first
lab alerts --minutes 10    # only the last 10 minutes'
lab alerts --json          # as the sink answers them
"""

import json
import sys
import time
from datetime import datetime

import requests

from .backends import AlertSink, BackendError, not_answering
from .stack.alert_sink import describe


def render(notifications: list[dict]) -> str:
    """The notifications as lines a person reads: when, to whom, then each alert."""
    lines = []
    for item in notifications:
        when = datetime.fromtimestamp(item["received_at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        group = ", ".join(f"{key}={value}" for key, value in sorted(item["groupLabels"].items()))
        lines.append(f"{when}  to {item['receiver']}  {item['status'].upper()}  ({group})")
        lines += [f"    {describe(alert)}" for alert in item["alerts"]]
    return "\n".join(lines)


def main(sink: AlertSink, minutes: float | None, as_json: bool) -> int:
    since = None if minutes is None else time.time() - minutes * 60
    notifications = sink.notifications(since)
    if as_json:
        print(json.dumps(notifications, indent=2))
    elif notifications:
        print(render(notifications))
    else:
        print(f"{sink.url}: no notifications yet (Alertmanager sends one group_wait after an alert fires)")
    return 0


def command(sink_url: str, minutes: float | None, as_json: bool) -> int:
    """`lab alerts`: what the webhook sink received, or why it could not be read."""
    try:
        return main(AlertSink(sink_url), minutes, as_json)
    except BackendError as error:
        print(f"lab alerts: {error}", file=sys.stderr)
    except requests.ConnectionError:
        print(not_answering("alerts", sink_url), file=sys.stderr)
    return 1
