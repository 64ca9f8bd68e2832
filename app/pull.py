"""Pull: the Prometheus metrics of the metric contract, and their exposition.

Under gunicorn every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (the variable must be set before prometheus_client is
imported); `/metrics` builds a fresh registry over those files on every scrape,
so one scrape answers for all workers, dead ones included (app/multiproc.py).

A request writes six values: in flight up and down, its counter, its
histogram's sum and bucket, the post's counter. Through prometheus_client's API
each write checks its labels, takes a lock, asks the kernel for the process id
(to notice a fork), finds its entry in a dict and packs 16 bytes: measured in a
gunicorn worker, those six writes were the largest part of what the
instrumentation cost a request (bench/results.md). So the recorder finds each
value's entry once, in the same file prometheus_client writes, and adds to
that double in place (`_Values`); the files, their format and what a scrape
reads are unchanged.

The catch: prometheus_client keeps each value's last write in memory and
writes that plus the increment. Once the recorder owns a value, nothing else in
the process may `.inc()` or `.observe()` that child through the API, or it
would write its stale copy over the recorder's counts. Everything the recorder
writes goes through PullRecorder; the other metrics use the API as usual.
"""

import mmap
import os
import threading
import weakref
from bisect import bisect_left

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from . import multiproc, signals


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
    sets): each is looked up once per process, with the place of its values,
    so a request costs a dict lookup and the additions themselves.
    """

    def __init__(self):
        self._children = {}  # (metric, label value) -> child, for the one-label metrics
        self._forget()
        _RECORDERS.add(self)

    def _forget(self) -> None:
        """Drop what points into this process's files (after a fork: the parent's)."""
        self._values = _Values()
        self._series = {}  # (method, route, status) -> _Series
        self._blog_requests = {}  # endpoint -> add(amount) of the post's requests_total
        self._in_flight = None  # add(amount) of http_requests_in_flight (-1: in `_Series.record`)

    def worker_started(self, threads: int) -> None:
        HTTP_CAPACITY.set(threads)

    def request_started(self, in_flight: bool = True) -> None:
        if in_flight:
            (self._in_flight or self._in_flight_adder())(1.0)

    def request_finished(self, method, route, status: int, seconds: float, in_flight: bool = True) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = self._values.series(method, route, status)
        series.record(seconds, in_flight)

    def _in_flight_adder(self):
        self._in_flight = self._values.adder(HTTP_IN_FLIGHT)
        return self._in_flight

    def db_query(self, operation: str, seconds: float) -> None:
        self._child(DB_QUERY_DURATION, operation).observe(seconds)

    def blog_request(self, endpoint: str) -> None:
        add = self._blog_requests.get(endpoint)
        if add is None:
            add = self._blog_requests[endpoint] = self._values.adder(self._child(BLOG_REQUESTS, endpoint))
        add(1.0)

    def blog_slow(self, endpoint: str, seconds: float) -> None:
        self._child(BLOG_SLOW, endpoint).observe(seconds)

    def _child(self, metric, value: str):
        # Only the app's code names these values (routes, operations), never a client.
        child = self._children.get((metric, value))
        if child is None:
            child = self._children[(metric, value)] = metric.labels(value)
        return child


# prometheus_client locks its own writes; these values are written by the recorder
# alone, under this lock (gthread workers answer several requests at once).
_LOCK = threading.Lock()
# The recorders of this process: a forked child must not write into its parent's files.
_RECORDERS = weakref.WeakSet()


def _after_fork() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # another thread of the parent may have held it
    for recorder in list(_RECORDERS):
        recorder._forget()


os.register_at_fork(after_in_child=_after_fork)


class _Series:
    """The values one (method, route, status) adds to: its counter, its histogram, in flight."""

    __slots__ = ("_count", "_sum", "_buckets", "_bounds", "_in_flight")

    def __init__(self, count, total, buckets, bounds, in_flight):
        self._count, self._sum, self._buckets, self._bounds = count, total, buckets, bounds
        self._in_flight = in_flight

    def record(self, seconds: float, in_flight: bool) -> None:
        # A histogram observation adds to the first bucket whose bound is >= seconds
        # (the last bound is +Inf); prometheus_client's `observe` does the same.
        count_view, count_index = self._count
        sum_view, sum_index = self._sum
        bucket_view, bucket_index = self._buckets[bisect_left(self._bounds, seconds)]
        gauge_view, gauge_index = self._in_flight
        with _LOCK:
            count_view[count_index] += 1.0
            sum_view[sum_index] += seconds
            bucket_view[bucket_index] += 1.0
            if in_flight:
                gauge_view[gauge_index] -= 1.0


class _ApiSeries:
    """The same through prometheus_client's API, where its values are not in mmap files."""

    def __init__(self, counter, histogram):
        self._counter, self._histogram = counter, histogram

    def record(self, seconds: float, in_flight: bool) -> None:
        self._counter.inc()
        self._histogram.observe(seconds)
        if in_flight:
            HTTP_IN_FLIGHT.dec()


class _Values:
    """Where this process's values live: prometheus_client's files, mapped once more.

    In multiprocess mode each value is a double at a fixed offset of its type's
    file (`counter_<pid>.db`, ...; prometheus_client's MmapedDict). A second
    shared mapping of the same file, seen as an array of doubles, adds to it in
    place: one aligned 8-byte store, which a concurrent scrape reads whole, as
    it does prometheus_client's own. Its mapping stays prometheus_client's alone
    (it may re-map or close it).
    """

    def __init__(self):
        self._views = {}  # file name -> its doubles

    def place(self, value) -> tuple[memoryview, int] | None:
        """Return (doubles, index) of one of prometheus_client's values, or None if not mmap-backed."""
        try:
            value.get()  # prometheus_client's own fork check: in a new process it opens new files
            file, key = value._file, value._key
            offset = file._positions[key]
            name = file._fname
        except (AttributeError, KeyError):
            return None  # not the multiprocess store (no PROMETHEUS_MULTIPROC_DIR), or another version
        if offset % 8:
            return None
        view = self._views.get(name)
        if view is None or offset // 8 >= len(view):  # new, or grown since it was mapped
            with open(name, "r+b") as handle:  # the mapping outlives the descriptor
                view = self._views[name] = memoryview(mmap.mmap(handle.fileno(), 0)).cast("d")
        return view, offset // 8

    def adder(self, metric):
        """Return add(amount) for a counter or gauge child (or a metric without labels)."""
        place = self.place(metric._value)
        if place is None:
            return metric.inc
        view, index = place

        def add(amount: float) -> None:
            with _LOCK:
                view[index] += amount

        return add

    def series(self, method, route, status: int):
        counter = HTTP_REQUESTS.labels(method, route.template, str(status))
        histogram = HTTP_REQUEST_DURATION.labels(method, route.template)
        places = [self.place(HTTP_IN_FLIGHT._value), self.place(counter._value), self.place(histogram._sum)]
        places += [self.place(bucket) for bucket in histogram._buckets]
        if None in places:
            return _ApiSeries(counter, histogram)
        in_flight, count, total, *buckets = places
        return _Series(count, total, tuple(buckets), tuple(histogram._upper_bounds), in_flight)


def exposition() -> tuple[bytes, str]:
    """Return the scrape body and its content type, summed over all workers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    body = multiproc.collect(path) if path else generate_latest(REGISTRY)
    return body, CONTENT_TYPE_LATEST
