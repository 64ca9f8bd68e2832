"""Time every request once and hand it to the recorders LAB_METRICS switched on.

A WSGI middleware rather than Flask hooks: it sees the final status of every
request, including 404, 405 and requests whose view raised (500), and it is
left out entirely when LAB_METRICS=off, so `off` costs nothing.

The request path is kept short (`make bench` measures it, bench/results.md):
the route comes from the request object Flask matched, with each rule's labels
built once (labels.Routes), and the recorders cache their label children and
StatsD names per (method, route, status).
"""

import functools
import logging
import os
from time import perf_counter
from typing import TYPE_CHECKING

from flask import Flask

from . import faults
from .config import otlp_endpoints, pipelines
from .labels import UNMATCHED_ROUTE, Routes, method_label
from .pull import FaultGauges, PullRecorder, WorkerProcesses, exposition
from .push import PushRecorder
from .signals import STATSD_DB_QUERY

if TYPE_CHECKING:
    from .otel import OtelRecorder

log = logging.getLogger(__name__)


class Metrics:
    """The app's metrics: pull (Prometheus), push (StatsD), push (OTLP), any of them or none."""

    def __init__(
        self, pull: PullRecorder | None, push: PushRecorder | None, otel: "OtelRecorder | None" = None
    ):
        self.pull = pull
        self.push = push
        self.otel = otel
        self._scraped = ()  # collectors a scrape adds to the workers' metrics (`init_app`)

    @classmethod
    def from_config(cls, config) -> "Metrics":
        chosen = pipelines(config["LAB_METRICS"])
        pull = PullRecorder() if "prometheus" in chosen else None
        push = otel = None
        if "statsd" in chosen:
            push = PushRecorder(
                config["STATSD_HOST"],
                config["STATSD_PORT"],
                config["STATSD_PREFIX"],
                gauge_interval=config["STATSD_GAUGE_INTERVAL"],
                resolve_interval=config["STATSD_RESOLVE_INTERVAL"],
            )
        if "otel" in chosen:
            # Imported only then: the SDK and its exporter take a worker a tenth of a second to load.
            from .otel import OtelRecorder

            otel = OtelRecorder(
                otlp_endpoints(config),
                config["OTEL_METRIC_EXPORT_INTERVAL"],
                config["OTEL_SERVICE_NAME"],
            )
        return cls(pull, push, otel)

    @property
    def recording(self) -> bool:
        return any(recorder is not None for recorder in (self.pull, self.push, self.otel))

    def init_app(self, app: Flask) -> None:
        app.extensions["lab.metrics"] = self
        # The faults in force, read when exported (a scrape, a gauge push), never on the request path.
        faults_in_force = functools.partial(faults.in_force, app)
        if self.pull is not None:
            self._scraped = (FaultGauges(faults_in_force),)
            # Under gunicorn (multiprocess mode) the processes are read from their slots; without it,
            # prometheus_client's own process collector reports this one process.
            directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            if directory:
                self._scraped += (WorkerProcesses(directory),)
        if self.push is not None:
            self.push.report_faults(faults_in_force)
        if self.recording:
            app.request_class = _kept_in_environ(app.request_class)
            app.wsgi_app = _RequestTimer(app, self)

    def worker_started(self, threads: int, slot: int | None = None) -> None:
        """Count this worker's capacity, start its gauge pushes (called by gunicorn's post_worker_init).

        `slot` is the worker's (app/processes.py): its process figures are pushed under it, and the
        worker in slot 0 also pushes the master's. Without one (no gunicorn) none are pushed."""
        if self.pull is not None:
            self.pull.worker_started(threads)
        if self.push is not None:
            self.push.worker_started(slot)
        if self.otel is not None:
            self.otel.worker_started(threads, slot)

    def worker_stopping(self) -> None:
        """Take this worker out of the push gauge and export its last OTLP (gunicorn's worker_exit)."""
        if self.push is not None:
            self.push.worker_stopping()
        if self.otel is not None:
            self.otel.close()

    def exposition(self) -> tuple[bytes, str]:
        """Return the body of GET /metrics and its content type (app/pull.py's `exposition`)."""
        return exposition(*self._scraped)

    def close(self) -> None:
        """Release the StatsD socket and the OTLP exporter (an app built and dropped, as in tests)."""
        if self.push is not None:
            self.push.close()
        if self.otel is not None:
            self.otel.close()

    def request_rejected(self, method: str, status: int) -> None:
        """Count a request gunicorn answered before the app saw it (app/gunicorn_workers.py)."""
        method = method_label(method)
        if self.pull is not None:
            self.pull.request_finished(method, UNMATCHED_ROUTE, status, 0.0, in_flight=False)
        if self.push is not None:
            environ = {}
            self.push.request_started(environ, in_flight=False)
            self.push.request_finished(
                environ, method, UNMATCHED_ROUTE.endpoint, status, 0.0, in_flight=False
            )
        if self.otel is not None:
            self.otel.request_finished(method, UNMATCHED_ROUTE, status, 0.0, in_flight=False)

    def db_query(self, operation: str, seconds: float) -> None:
        if self.pull is not None:
            self.pull.db_query(operation, seconds)
        if self.push is not None:
            self.push.timing(STATSD_DB_QUERY.format(operation=operation), seconds)
        if self.otel is not None:
            self.otel.db_query(operation, seconds)

    def blog_request(self, endpoint: str) -> None:
        if self.pull is not None:
            self.pull.blog_request(endpoint)

    def blog_slow(self, endpoint: str, seconds: float) -> None:
        if self.pull is not None:
            self.pull.blog_slow(endpoint, seconds)


REQUEST_KEY = "lab.request"
# A scrape is answered while it reads the in-flight gauge: counted there, it
# would keep the gauge at 1 or more forever. It is counted everywhere else.
SCRAPE_PATHS = frozenset({"/metrics", "/metrics/"})


def _kept_in_environ(request_class: type) -> type:
    """Return a subclass of the app's request class that leaves its objects in the environ."""
    init = request_class.__init__

    class Request(request_class):
        # Flask drops its own reference (`werkzeug.request`) when the request
        # context ends, before the middleware resumes; the middleware reads the
        # matched rule from this one, then removes it. Cheaper than a teardown
        # hook, which Flask calls through `ensure_sync` and context-local proxies.
        def __init__(self, environ, populate_request=True, shallow=False):
            init(self, environ, populate_request, shallow)
            environ[REQUEST_KEY] = self

    Request.__qualname__ = Request.__name__ = request_class.__name__
    return Request


class _RequestTimer:
    def __init__(self, app: Flask, metrics: Metrics):
        self.wsgi_app = app.wsgi_app
        self.pull = metrics.pull
        self.push = metrics.push
        self.otel = metrics.otel
        self.routes = Routes(app)

    def __call__(self, environ, start_response):
        status = 500  # what the client gets if the app raises past Flask

        def capture_status(status_line, headers, exc_info=None):
            nonlocal status
            status = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        pull, push, otel = self.pull, self.push, self.otel
        in_flight = environ.get("PATH_INFO") not in SCRAPE_PATHS
        if pull is not None:
            pull.request_started(in_flight)
        if push is not None:
            push.request_started(environ, in_flight)
        if otel is not None:
            otel.request_started(in_flight)
        started = perf_counter()
        try:
            return self.wsgi_app(environ, capture_status)
        finally:
            seconds = perf_counter() - started
            try:
                method = method_label(environ.get("REQUEST_METHOD", ""))
                # popped: the request refers to the environ, which must not refer back
                route = self.routes.of(environ.pop(REQUEST_KEY, None))
                if pull is not None:
                    pull.request_finished(method, route, status, seconds, in_flight)
                if push is not None:
                    push.request_finished(environ, method, route.endpoint, status, seconds, in_flight)
                if otel is not None:
                    otel.request_finished(method, route, status, seconds, in_flight)
            except Exception:  # a bug here may cost a data point, never the client's answer
                log.exception("could not record the metrics of %s", environ.get("PATH_INFO"))
