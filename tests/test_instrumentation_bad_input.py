"""Malformed and oversized requests get a clear 4xx, and both pipelines count it
under bounded labels; nothing in the metrics layer turns one into a 500."""

import socket
from urllib.parse import urlsplit

import pytest

from .helpers import UdpListener, gunicorn, value

pytestmark = pytest.mark.processes  # a module fixture starts processes

LONG_LINE = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"  # limit_request_line: 4094
BIG_HEADER = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"  # field limit: 8190
MANY_HEADERS = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n"  # 100
# (raw request, status, method label, route label)
CASES = {
    "request line too long": (LONG_LINE, 414, "other", "unmatched"),
    "header too large": (BIG_HEADER, 431, "other", "unmatched"),
    "too many headers": (MANY_HEADERS, 431, "other", "unmatched"),
    "not HTTP": (b"HELLO\r\n\r\n", 400, "other", "unmatched"),
    "bad method characters": (b"G(E)T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "other", "unmatched"),
    "bad HTTP version": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400, "other", "unmatched"),
    "raw bytes that are not ASCII": (b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400, "other", "unmatched"),
    "escaped bytes that are not UTF-8": (b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 404, "GET", "unmatched"),
    "long path within limits": (
        b"GET /" + b"c" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        404,
        "GET",
        "unmatched",
    ),
    "faults without JSON": (
        b"PUT /faults HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 3\r\n\r\nabc",
        400,
        "PUT",
        "/faults",
    ),
}
STATSD_ENDPOINT = {"unmatched": "unmatched", "/faults": "faults"}


def send_raw(url: str, request: bytes) -> int:
    """Send bytes as they are (no client would) and return the status of the answer."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            assert chunk, f"connection closed without an answer to {request[:40]!r}"
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def server():
    with UdpListener() as statsd:
        env = {"GUNICORN_WORKERS": "2", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(statsd.port)}
        with gunicorn(LAB_ADMIN_TOKEN="t", **env) as running:
            yield running, statsd


def test_each_bad_request_gets_its_4xx_and_is_counted_once_in_both_pipelines(server):
    app, statsd = server
    statsd.datagrams(wait=0.05)  # drop what the start-up sent
    expected = {}
    for name, (request, status, method, route) in CASES.items():
        for _ in range(3):
            assert send_raw(app.url, request) == status, name
        key = (method, route, str(status))
        expected[key] = expected.get(key, 0) + 3

    scraped = app.scrape()
    for (method, route, status), count in expected.items():
        labels = {"method": method, "route": route, "status": status}
        assert value(scraped, "http_requests_total", **labels) == count, labels
    statuses = {dict(labels)["status"] for (name, labels) in scraped if name == "http_requests_total"}
    assert not {status for status in statuses if status.startswith("5")}, "the metrics layer answered a 5xx"

    pushed = statsd.stats()
    for (method, route, status), count in expected.items():
        name = f"lab.app.http.requests.{STATSD_ENDPOINT[route]}.{method}.{status}:1|c"
        assert pushed[name] == count, name


def test_a_rejected_request_leaves_in_flight_at_zero(server):
    app, _ = server
    send_raw(app.url, LONG_LINE)
    assert value(app.scrape(), "http_requests_in_flight") == 0
