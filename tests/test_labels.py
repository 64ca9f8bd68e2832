"""10,000 requests with random paths, methods and query strings leave the number of
series bounded by routes x methods x statuses, in both pipelines."""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .helpers import UdpListener, gunicorn

pytestmark = pytest.mark.processes  # every test here starts processes

REQUESTS = 10_000
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW", "PURGE", "X-CUSTOM", "get"]
ROUTES = {"/", "/database/", "/error/", "/metrics/", "/healthz", "/faults", "unmatched"}
LABELLED_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"}
# what the app can answer: 200, 404, 405, 500, and 401/403 of the faults endpoint
STATUSES = {"200", "401", "403", "404", "405", "500"}


def random_request(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.2:
        path = rng.choice(["/", "/error/", "/healthz", "/faults", "/database/"])
    else:
        path = "/" + "/".join(f"{rng.randrange(10**9):x}" for _ in range(rng.randrange(1, 5)))
    query = "&".join(f"{rng.randrange(10**6)}={rng.random()}" for _ in range(rng.randrange(0, 4)))
    return rng.choice(METHODS), f"{path}?{query}" if query else path


def test_series_stay_bounded_under_10000_random_requests():
    rng = random.Random(2026)
    plan = [random_request(rng) for _ in range(REQUESTS)]
    env = {"DB_DELAY_MIN_SECONDS": "0", "DB_DELAY_MAX_SECONDS": "0", "GUNICORN_WORKERS": "3"}
    with UdpListener() as statsd, ThreadPoolExecutor(max_workers=5) as pool:
        with gunicorn(STATSD_HOST="127.0.0.1", STATSD_PORT=str(statsd.port), **env) as app:
            # read the datagrams as they come: 10,000 would overflow the socket's buffer
            pushed = pool.submit(statsd.stats, wait=2.0)
            statuses = list(pool.map(lambda r: send(app.url, *r), plan))
            scraped = app.scrape()
        pushed = pushed.result()

    assert 500 in statuses and 404 in statuses and 405 in statuses
    series = {labels for name, labels in scraped if name == "http_requests_total"}
    labels = [dict(label_set) for label_set in series]
    assert {label["route"] for label in labels} <= ROUTES
    assert {label["method"] for label in labels} <= LABELLED_METHODS
    assert {label["status"] for label in labels} <= STATUSES
    assert len(series) <= len(ROUTES) * len(LABELLED_METHODS) * len(STATUSES)
    assert sum(value for (name, _), value in scraped.items() if name == "http_requests_total") >= REQUESTS

    # The push side names the same few things: <endpoint>.<method>.<status>
    counters = {line.split(":")[0] for line in pushed if line.endswith("|c")}
    assert counters and len(counters) <= len(ROUTES) * len(LABELLED_METHODS) * len(STATUSES)
    assert not any(any(char.isdigit() for char in name.split(".")[4]) for name in counters)


def send(url: str, method: str, path: str) -> int:
    return requests.request(method, url + path, timeout=10).status_code
