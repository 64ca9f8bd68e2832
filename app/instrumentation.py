"""Time every request once and hand it to the recorders LAB_METRICS switched on.

A WSGI middleware rather than Flask hooks: it sees the final status of every
request, including 404, 405 and requests whose view raised (500), and it is
left out entirely when LAB_METRICS=off, so `off` costs nothing.
"""

import logging
from time import perf_counter

from flask import Flask, current_app, request

from .labels import UNMATCHED_ROUTE, method_label, route_of
from .pull import PullRecorder
from .push import PushRecorder

log = logging.getLogger(__name__)


class Metrics:
    """The app's metrics: pull (Prometheus), push (StatsD), both or none."""

    def __init__(self, pull: PullRecorder | None, push: PushRecorder | None):
        self.pull = pull
        self.push = push

    @classmethod
    def from_config(cls, config) -> "Metrics":
        mode = config["LAB_METRICS"]
        pull = PullRecorder() if mode in ("prometheus", "all") else None
        push = None
        if mode in ("statsd", "all"):
            push = PushRecorder(
                config["STATSD_HOST"],
                config["STATSD_PORT"],
                config["STATSD_PREFIX"],
                gauge_interval=config["STATSD_GAUGE_INTERVAL"],
                resolve_interval=config["STATSD_RESOLVE_INTERVAL"],
            )
        return cls(pull, push)

    def init_app(self, app: Flask) -> None:
        app.extensions["lab.metrics"] = self
        if self.pull is not None or self.push is not None:
            app.teardown_request(_remember_route)
            app.wsgi_app = _RequestTimer(app, self)

    def worker_started(self, threads: int) -> None:
        """Count this worker's capacity (called by gunicorn's post_worker_init)."""
        if self.pull is not None:
            self.pull.worker_started(threads)

    def worker_stopping(self) -> None:
        """Take this worker out of the push gauge (called by gunicorn's worker_exit)."""
        if self.push is not None:
            self.push.worker_stopping()

    def close(self) -> None:
        """Release the StatsD socket (an app built and dropped, as in tests)."""
        if self.push is not None:
            self.push.close()

    def request_rejected(self, method: str, status: int) -> None:
        """Count a request gunicorn answered before the app saw it (app/workers.py)."""
        method = method_label(method)
        if self.pull is not None:
            self.pull.request_finished(method, UNMATCHED_ROUTE, status, 0.0, in_flight=False)
        if self.push is not None:
            environ = {}
            self.push.request_started(environ, in_flight=False)
            self.push.request_finished(
                environ, method, UNMATCHED_ROUTE.endpoint, status, 0.0, in_flight=False
            )

    def db_query(self, operation: str, seconds: float) -> None:
        if self.pull is not None:
            self.pull.db_query(operation, seconds)
        if self.push is not None:
            self.push.timing(f"db.query.{operation}", seconds)

    def post_request(self, endpoint: str) -> None:
        if self.pull is not None:
            self.pull.post_request(endpoint)

    def post_slow(self, endpoint: str, seconds: float) -> None:
        if self.pull is not None:
            self.pull.post_slow(endpoint, seconds)


ROUTE_KEY = "lab.route"
# A scrape is answered while it reads the in-flight gauge: counted there, it
# would keep the gauge at 1 or more forever. It is counted everywhere else.
SCRAPE_PATHS = frozenset({"/metrics", "/metrics/"})


def _remember_route(exc):
    # The last moment the matched rule is known: Flask drops the request object
    # from the environ when its context ends, before the middleware resumes.
    request.environ[ROUTE_KEY] = route_of(current_app, request)


class _RequestTimer:
    def __init__(self, app: Flask, metrics: Metrics):
        self.wsgi_app = app.wsgi_app
        self.pull = metrics.pull
        self.push = metrics.push

    def __call__(self, environ, start_response):
        status = 500  # what the client gets if the app raises past Flask

        def capture_status(status_line, headers, exc_info=None):
            nonlocal status
            status = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        in_flight = environ.get("PATH_INFO") not in SCRAPE_PATHS
        if self.pull is not None:
            self.pull.request_started(in_flight)
        if self.push is not None:
            self.push.request_started(environ, in_flight)
        started = perf_counter()
        try:
            return self.wsgi_app(environ, capture_status)
        finally:
            seconds = perf_counter() - started
            try:
                method = method_label(environ.get("REQUEST_METHOD", ""))
                route = environ.get(ROUTE_KEY, UNMATCHED_ROUTE)
                if self.pull is not None:
                    self.pull.request_finished(method, route, status, seconds, in_flight)
                if self.push is not None:
                    self.push.request_finished(environ, method, route.endpoint, status, seconds, in_flight)
            except Exception:  # a bug here may cost a data point, never the client's answer
                log.exception("could not record the metrics of %s", environ.get("PATH_INFO"))
