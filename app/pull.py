"""Pull: the Prometheus metrics of the metric contract, and their exposition.

Under gunicorn every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (the variable must be set before prometheus_client is
imported); `/metrics` builds a fresh registry over those files on every scrape,
so one scrape answers for all workers, dead ones included (app/multiproc.py).
"""

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from . import multiproc

# 5 ms .. 10 s, with an edge on the `/` latency SLO (300 ms) and on the 1, 2 and
# 3 s that the post's /database/ sleeps between.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2, 3, 5, 10)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, URL rule and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method and URL rule.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests being answered now, summed over live workers.",
    multiprocess_mode="livesum",
)
HTTP_CAPACITY = Gauge(
    "http_requests_capacity",
    "Requests the live workers can answer at once (workers x threads).",
    multiprocess_mode="livesum",
)
DB_QUERY_DURATION = Histogram(
    "db_query_duration_seconds",
    "Time spent in the (simulated) database, by operation.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)

# The blog post's own two metrics, kept under its names so its readers find them.
POST_REQUESTS = Counter("requests_total", "Application Request Count", ["endpoint"])
POST_SLOW = Histogram("slow", "Histogram for the duration in seconds.", ["endpoint"], buckets=LATENCY_BUCKETS)


class PullRecorder:
    """Record requests into the Prometheus metrics, with label children cached."""

    def __init__(self):
        self._requests = {}
        self._durations = {}

    def worker_started(self, threads: int) -> None:
        HTTP_CAPACITY.set(threads)

    def request_started(self, in_flight: bool = True) -> None:
        if in_flight:
            HTTP_IN_FLIGHT.inc()

    def request_finished(self, method, route, status: int, seconds: float, in_flight: bool = True) -> None:
        # labels() validates and locks on every call; the children are few
        # (routes x methods x statuses), so look each up once per process.
        key = (method, route.template, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = HTTP_REQUESTS.labels(method, route.template, str(status))
        counter.inc()
        histogram = self._durations.get(key[:2])
        if histogram is None:
            histogram = self._durations[key[:2]] = HTTP_REQUEST_DURATION.labels(*key[:2])
        histogram.observe(seconds)
        if in_flight:
            HTTP_IN_FLIGHT.dec()

    def db_query(self, operation: str, seconds: float) -> None:
        DB_QUERY_DURATION.labels(operation).observe(seconds)

    def post_request(self, endpoint: str) -> None:
        POST_REQUESTS.labels(endpoint).inc()

    def post_slow(self, endpoint: str, seconds: float) -> None:
        POST_SLOW.labels(endpoint).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """Return the scrape body and its content type, summed over all workers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    body = multiproc.collect(path) if path else generate_latest(REGISTRY)
    return body, CONTENT_TYPE_LATEST
