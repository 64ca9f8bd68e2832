"""Pull: the Prometheus metrics of the metric contract, and their exposition.

Under gunicorn every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (the variable must be set before prometheus_client is
imported); `/metrics` builds a fresh registry over those files on every scrape,
so one scrape answers for all workers, dead ones included (app/multiproc.py).

A request writes its values through prometheus_client's public API only: in
flight up and down, its counter, its histogram. Each label child is looked up
once per process and kept, so a request costs the writes themselves (each
takes prometheus_client's lock, checks the process id to notice a fork, and
packs its value into the worker's file). `make bench` measures what that costs
a request (bench/results.md); prometheus_client notices a fork by itself, so
the cached children stay right in a forked worker.

The faults in force are no value a worker writes: `FaultGauges` reads them at
scrape time, and the scrape collects it beside the workers' files. Nor are the
workers' CPU, memory and open files, which multiprocess mode cannot export from
the files: `WorkerProcesses` reads each live worker's process, and the master's,
at scrape time (app/processes.py).
"""

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import multiproc, processes, signals
from .faults import Fault
from .labels import Route


def _histogram(metric: signals.Metric) -> Histogram:
    return Histogram(metric.name, metric.help, metric.labels, buckets=signals.LATENCY_BUCKETS)


HTTP_REQUESTS = Counter(signals.HTTP_REQUESTS.name, signals.HTTP_REQUESTS.help, signals.HTTP_REQUESTS.labels)
HTTP_REQUEST_DURATION = _histogram(signals.HTTP_REQUEST_DURATION)
# Live sums: a dead worker's requests are no longer in flight, nor is its capacity there.
HTTP_IN_FLIGHT = Gauge(signals.HTTP_IN_FLIGHT.name, signals.HTTP_IN_FLIGHT.help, multiprocess_mode="livesum")
HTTP_CAPACITY = Gauge(signals.HTTP_CAPACITY.name, signals.HTTP_CAPACITY.help, multiprocess_mode="livesum")
DB_QUERY_DURATION = _histogram(signals.DB_QUERY_DURATION)
BLOG_REQUESTS = Counter(signals.BLOG_REQUESTS.name, signals.BLOG_REQUESTS.help, signals.BLOG_REQUESTS.labels)
BLOG_SLOW = _histogram(signals.BLOG_SLOW)


class PullRecorder:
    """Record requests into the Prometheus metrics.

    The label children are few (routes x methods x statuses, all from closed
    sets): each is looked up once per process and kept.
    """

    def __init__(self):
        self._children = {}  # (metric, label values) -> child
        self._requests = {}  # (method, route, status) -> (its counter child, its histogram child)

    def worker_started(self, threads: int) -> None:
        HTTP_CAPACITY.set(threads)

    def request_started(self, in_flight: bool = True) -> None:
        if in_flight:
            HTTP_IN_FLIGHT.inc()

    def request_finished(self, method, route, status: int, seconds: float, in_flight: bool = True) -> None:
        children = self._requests.get((method, route, status))
        if children is None:
            children = self._requests[(method, route, status)] = (
                self._child(HTTP_REQUESTS, method, route.template, str(status)),
                self._child(HTTP_REQUEST_DURATION, method, route.template),
            )
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)
        if in_flight:
            HTTP_IN_FLIGHT.dec()

    def db_query(self, operation: str, seconds: float) -> None:
        self._child(DB_QUERY_DURATION, operation).observe(seconds)

    def blog_request(self, endpoint: str) -> None:
        self._child(BLOG_REQUESTS, endpoint).inc()

    def blog_slow(self, endpoint: str, seconds: float) -> None:
        self._child(BLOG_SLOW, endpoint).observe(seconds)

    def _child(self, metric, *values: str):
        # Only closed sets name these values (URL rules, verbs, statuses, operations), never a client.
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child


class FaultGauges(Collector):
    """The faults in force as gauges, one series per route faults apply to (0 where none).

    exposition(FaultGauges(functools.partial(faults.in_force, app)))
    """

    def __init__(self, in_force: Callable[[], dict[Route, Fault]]):
        self._in_force = in_force

    def collect(self) -> list[GaugeMetricFamily]:
        error_ratio, latency = (
            GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)
            for metric in (signals.LAB_FAULT_ERROR_RATIO, signals.LAB_FAULT_LATENCY)
        )
        for route, fault in self._in_force().items():
            error_ratio.add_metric([route.template], fault.error_rate)
            latency.add_metric([route.template], fault.latency_ms / 1000)
        return [error_ratio, latency]


class WorkerProcesses(Collector):
    """Each live gunicorn worker's CPU seconds, resident memory and open files, and the master's,
    labelled by slot (`worker="0"`, ..., `worker="master"`): bounded however often workers recycle.

    exposition(WorkerProcesses(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    """

    def __init__(self, directory: str):
        self._directory = directory

    def collect(self) -> list:
        cpu = CounterMetricFamily(
            signals.PROCESS_CPU.name.removesuffix("_total"), signals.PROCESS_CPU.help, labels=[signals.WORKER]
        )
        memory, open_fds = (
            GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)
            for metric in (signals.PROCESS_MEMORY, signals.PROCESS_OPEN_FDS)
        )
        for worker, process in processes.live(self._directory).items():
            reading = processes.read(process)
            if reading is None:  # exited since it was listed
                continue
            cpu.add_metric([worker], reading.cpu_user + reading.cpu_system)
            memory.add_metric([worker], reading.rss_bytes)
            open_fds.add_metric([worker], reading.open_fds)
        return [cpu, memory, open_fds]


def exposition(*collectors: Collector) -> tuple[bytes, str]:
    """Return the scrape body and its content type: all workers' metrics, and `collectors`'."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        return multiproc.collect(path, *collectors), CONTENT_TYPE_LATEST
    # A registry of this scrape only: collectors registered on the global one would clash
    # when a second app is built in the same process (as the tests do).
    registry = CollectorRegistry()
    for collector in (REGISTRY, *collectors):
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
