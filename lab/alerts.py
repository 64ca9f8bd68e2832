"""`lab alerts`: the notifications Alertmanager delivered to the lab's webhook sink (lab/alert_sink.py).

lab alerts                 # every notification the sink kept, oldest first
lab alerts --minutes 10    # only the last 10 minutes'
lab alerts --json          # as the sink answers them
"""

import json
import time
from datetime import datetime

from .alert_sink import describe
from .backends import AlertSink


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
