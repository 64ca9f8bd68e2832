"""Worker recycling and SIGKILL under a real Prometheus: no counter ever goes backwards
(resets() is 0 over the run), the totals are exact, in flight returns to 0, capacity
counts live workers only, and the multiprocess directory stays bounded.

The soak version (thousands of recycles, scrape time against recycles) is in `make bench`.
"""

import os
import signal
import threading

import pytest
import requests

from .helpers import gunicorn, prometheus_scraping, wait_until

pytestmark = pytest.mark.processes  # every test here starts processes

WORKERS, MAX_REQUESTS, ROUNDS, PER_ROUND = 3, 3, 6, 40
ENV = {
    "GUNICORN_WORKERS": str(WORKERS),
    "GUNICORN_MAX_REQUESTS": str(MAX_REQUESTS),
    "STATSD_HOST": "127.0.0.1",
    "DB_DELAY_MIN_SECONDS": "0",
    "DB_DELAY_MAX_SECONDS": "0.01",
}
# seconds for a backend to show what was sent (a few scrapes, a restart)
TIMEOUT = 20


def send(url: str, count: int) -> None:
    for i in range(count):
        # a /database/ now and then, so the histogram of another route is recycled too
        path = "/database/" if i % 5 == 0 else "/"
        assert requests.get(url + path, timeout=10).status_code == 200


def test_counters_never_go_backwards_across_recycles_and_kills(tmp_path):
    with gunicorn(**ENV) as app, prometheus_scraping(app.url, tmp_path) as prometheus:
        for round_ in range(ROUNDS):
            # two clients at once, so that workers recycle while others are busy
            threads = [threading.Thread(target=send, args=(app.url, PER_ROUND // 2)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if round_ % 2:
                # A crash: no worker_exit, no clean goodbye. Between rounds, when no request is
                # in flight: a request the kill cut off would be lost on both sides, and the
                # exact total below would depend on the timing of the kill.
                for pid in sorted(app.workers())[:1]:
                    os.kill(pid, signal.SIGKILL)

        sent = ROUNDS * PER_ROUND
        total = 'sum(http_requests_total{route=~"/|/database/"})'
        wait_until(lambda: prometheus.value(total), sent, TIMEOUT, "requests in Prometheus")
        for counter in ("http_requests_total", "http_request_duration_seconds_count", "requests_total"):
            # every scrape of the run: a reset would show as one here
            assert prometheus.value(f"sum(resets({counter}[10m]))") == 0, counter
        # a few scrapes later too (the last workers may still be recycling)
        wait_until(lambda: prometheus.value("sum(http_requests_in_flight)"), 0, TIMEOUT, "in flight")
        wait_until(lambda: prometheus.value("sum(http_requests_capacity)"), WORKERS, TIMEOUT, "capacity")

        # ~80 workers came and went (every 3 requests, scrapes included), 3 were killed; once the
        # master has reaped the last ones: the live workers' files and one archive per type
        def files() -> list[str]:
            return sorted(path.name for path in app.multiproc.glob("*.db"))

        wait_until(lambda: len(files()) <= WORKERS * 3 + 3, True, TIMEOUT, f"a bounded directory: {files()}")
