"""A webhook receiver for Alertmanager: the lab's pager, which a person can watch.

    python lab/stack/alert_sink.py --port 9095 [--host 127.0.0.1]

    POST /webhook        Alertmanager's webhook payload (version 4): logged, one line per alert, and kept
    GET  /notifications  the last notifications kept, oldest first (?since=<epoch seconds>: newer only)
    GET  /healthz        {"status": "ok"}

`lab alerts` prints what GET /notifications holds. Standard library only, so the
compose stack runs this file as it is in the app's image (docker-compose.yml's
alert-sink service) and the native stack runs it with any Python 3.
Notifications live in memory: a restart forgets them, as Alertmanager's own
notification log does not (it resends nothing that was delivered).
"""

import argparse
import json
import logging
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEPT = 200  # notifications kept for GET /notifications
MAX_BODY_BYTES = 1 << 20  # Alertmanager truncates a group to fit far below this
# What a notification keeps of each alert (the payload's other fields repeat the group's).
ALERT_FIELDS = ("status", "labels", "annotations", "startsAt", "endsAt", "fingerprint")

log = logging.getLogger("alert-sink")


class BadNotification(ValueError):
    """A POST body that is not an Alertmanager webhook payload; the message says what is wrong."""


def notification(payload: object, received_at: float) -> dict:
    """What the sink keeps of a webhook payload, or BadNotification."""
    if not isinstance(payload, dict):
        raise BadNotification("expected a JSON object (Alertmanager's webhook payload)")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not all(isinstance(alert, dict) for alert in alerts):
        raise BadNotification("expected `alerts`: a list of objects")
    for field in ("receiver", "status"):
        if not isinstance(payload.get(field), str):
            raise BadNotification(f"expected `{field}`: a string")
    return {
        "received_at": received_at,
        "receiver": payload["receiver"],
        "status": payload["status"],
        "groupLabels": payload.get("groupLabels") or {},
        "commonLabels": payload.get("commonLabels") or {},
        "alerts": [{name: alert.get(name) for name in ALERT_FIELDS} for alert in alerts],
    }


def describe(alert: dict) -> str:
    """One line for an alert: its status, name, severity and other labels, and its summary."""
    labels = dict(alert.get("labels") or {})
    name = labels.pop("alertname", "?")
    severity = labels.pop("severity", "-")
    others = ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))
    summary = (alert.get("annotations") or {}).get("summary", "")
    return f"{str(alert.get('status', '?')).upper():<8} {severity:<7} {name} {{{others}}} {summary}".rstrip()


class Notifications:
    """The last KEPT notifications, shared by the server's threads."""

    def __init__(self, kept: int = KEPT):
        self._kept = deque(maxlen=kept)
        self._lock = threading.Lock()

    def add(self, item: dict) -> None:
        with self._lock:
            self._kept.append(item)

    def since(self, since: float | None) -> list[dict]:
        with self._lock:
            return [item for item in self._kept if since is None or item["received_at"] > since]


class Handler(BaseHTTPRequestHandler):
    server_version = "lab-alert-sink"
    notifications: Notifications  # set by serve()

    def do_POST(self):
        if urlsplit(self.path).path != "/webhook":
            return self._answer(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: POST to /webhook"})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body over 1 MiB"})
        try:
            item = notification(json.loads(self.rfile.read(length) or b"null"), time.time())
        except (ValueError, BadNotification) as error:  # json.JSONDecodeError is a ValueError
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        self.notifications.add(item)
        for alert in item["alerts"]:
            log.info("%s <- %s", item["receiver"], describe(alert))
        return self._answer(HTTPStatus.OK, {"status": "kept"})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self._answer(HTTPStatus.OK, {"status": "ok"})
        if url.path != "/notifications":
            return self._answer(HTTPStatus.NOT_FOUND, {"error": f"{url.path}: GET /notifications"})
        since = parse_qs(url.query).get("since", [None])[0]
        try:
            since = None if since is None else float(since)
        except ValueError:
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": f"since={since!r}: expected epoch seconds"})
        return self._answer(HTTPStatus.OK, {"notifications": self.notifications.since(since)})

    def _answer(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # the alerts are logged above; requests are not news
        pass


def serve(host: str, port: int) -> ThreadingHTTPServer:
    """A server on (host, port) keeping its own notifications; call serve_forever() on it."""
    handler = type("SinkHandler", (Handler,), {"notifications": Notifications()})
    return ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (compose: 0.0.0.0)")
    parser.add_argument("--port", type=int, default=9095)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
    server = serve(args.host, args.port)
    log.info("alert sink on http://%s:%s/webhook", args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
