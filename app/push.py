"""Push: StatsD metrics over UDP, one datagram per request.

What makes this safe to run in many gunicorn workers:

- A request's stats leave in one datagram when the request ends: a pystatsd
  pipeline. A request that adds its own stats (the database timer, the post's
  `Counter`) makes it on first use; its counter and timer join it at the end.
- The in-flight gauge is sent as deltas (`+1|g`, `-1|g`): each worker pushes the
  change of its own count since its last push, so the workers add up in StatsD
  instead of overwriting each other. A background thread pushes it every
  STATSD_GAUGE_INTERVAL, off the request path, like a scrape samples a gauge.
  The thread starts with the worker (gunicorn's post_worker_init), or with its
  first request where no gunicorn calls that.
- The faults in force (app/faults.py) go in the same datagram as absolute gauges,
  the one exception: the workers of an instance read them from the same file, so
  each one overwriting the others' value with the same value is exactly right.
  (Replicas have a file each: with `--scale`, set the same faults on every one.)
- Each worker's CPU seconds, resident memory and open files (app/processes.py)
  are absolute gauges under its slot (`process.worker_0.*`), pushed with the
  others by the reporter thread; the worker in slot 0 also pushes the master's
  (`process.master.*`). One writer per name, so nothing overwrites: a worker
  that exits sends zeros for its slot, and its replacement takes the slot over.
- `StatsClient` resolves its host in its constructor. The app builds it at
  start and, if the host does not resolve (the graphite service is not up yet,
  or `make run` has no backends), serves anyway and retries in the background
  thread, which also re-resolves so a backend that comes back at a new address
  gets the pushes again.
- pystatsd's socket is unconnected and blocking, and its sends swallow errors. A
  UDP send returns once the kernel has queued the datagram, without waiting for
  any receiver, so a StatsD that is down or slow never holds a request: its
  datagrams are lost, which is push's trade-off. (pystatsd has no public way to
  make the socket non-blocking; that would only matter with this machine's own
  network queue full.)
"""

import functools
import logging
import os
import threading
import time
from collections.abc import Callable

import psutil
from flask import current_app, has_request_context, request
from statsd import StatsClient

from . import processes
from .faults import Fault
from .labels import Route
from .signals import (
    MASTER,
    STATSD_FAULT_ERROR_RATIO,
    STATSD_FAULT_LATENCY,
    STATSD_IN_FLIGHT,
    STATSD_LATENCY,
    STATSD_PROCESS_CPU,
    STATSD_PROCESS_MEMORY,
    STATSD_PROCESS_OPEN_FDS,
    STATSD_REQUESTS,
    STATSD_WORKER,
)

log = logging.getLogger(__name__)

PIPELINE_KEY = "lab.statsd.pipeline"

# This process's id. os.getpid() is a system call, and the request path asks
# whether the reporter thread runs in this process (threads do not survive a fork).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class PushRecorder:
    """Send each request's StatsD metrics in one datagram, the in-flight gauge as deltas, the faults."""

    def __init__(self, host: str, port: int, prefix: str, gauge_interval: float, resolve_interval: float):
        self._address = (host, port)
        self._prefix = prefix
        self._gauge_interval = gauge_interval
        self._resolve_interval = resolve_interval
        self._lock = threading.Lock()
        self._in_flight = 0
        self._in_flight_pushed = 0
        self._reporter_pid = None
        self._closed = threading.Event()
        self._retired = None  # the client before the last re-resolve
        self._faults_in_force: Callable[[], dict[Route, Fault]] = dict  # none until `report_faults`
        self._processes: dict[str, psutil.Process] = {}  # StatsD name -> process, from `worker_started`
        self.client = self._resolve()

    def report_faults(self, in_force: Callable[[], dict[Route, Fault]]) -> None:
        """Push what `in_force()` returns (app/faults.py's `in_force`) at every gauge push."""
        self._faults_in_force = in_force

    def worker_started(self, slot: int | None = None) -> None:
        """Start pushing the gauges now, requests or not; with a slot, this process's figures under
        it, and in slot 0 the master's (this worker's parent) too."""
        if slot is not None:
            self._processes = {STATSD_WORKER.format(slot=slot): psutil.Process()}
            if slot == 0:
                self._processes[MASTER] = psutil.Process(os.getppid())
        self._start_reporter()

    def _resolve(self) -> StatsClient | None:
        host, port = self._address
        try:
            return StatsClient(host, port, prefix=self._prefix)
        except OSError as error:  # socket.gaierror: the name does not resolve (yet)
            log.warning(
                "StatsD host %s:%s unavailable (%s); serving without pushes, retrying", host, port, error
            )
            return None

    def _start_reporter(self) -> None:
        # Threads do not survive fork: one per process, started with it or by its first request.
        with self._lock:
            if self._reporter_pid == _pid:
                return
            self._reporter_pid = _pid
        threading.Thread(target=self._report_forever, name="statsd-reporter", daemon=True).start()

    def _report_forever(self) -> None:
        next_resolve = time.monotonic() + self._resolve_interval
        while not self._closed.wait(self._gauge_interval):
            if time.monotonic() >= next_resolve:
                self.reresolve()
                next_resolve = time.monotonic() + self._resolve_interval
            try:
                self.push_gauges()
            except Exception:  # a bug here may cost a push, never the thread (and the pushes after it)
                log.exception("could not push the gauges")

    def reresolve(self) -> None:
        """Resolve the host again; if it resolves, push through a new client (the reporter thread
        does this every `resolve_interval`, so a host that comes up or moves gets the pushes)."""
        fresh = self._resolve()
        if fresh is None:
            return
        if self._closed.is_set():  # close() ran meanwhile
            fresh.close()
            return
        # Requests that started before the swap may still hold pipelines on the old
        # client: it is closed only at the next swap, long after they ended.
        retired, self._retired, self.client = self._retired, self.client, fresh
        if retired is not None:
            retired.close()

    def push_in_flight(self) -> None:
        """Push the change of this process's in-flight count since the last push."""
        client = self.client
        if client is not None:
            with client.pipeline() as pipe:  # sent on leaving the block, if not empty
                self._in_flight_change(pipe)

    def push_gauges(self) -> None:
        """Push the in-flight change and the faults in force, in one datagram (the reporter's tick)."""
        client = self.client
        if client is None:
            return
        with client.pipeline() as pipe:
            self._in_flight_change(pipe)
            for route, fault in self._faults_in_force().items():
                endpoint = route.endpoint
                pipe.gauge(STATSD_FAULT_ERROR_RATIO.format(endpoint=endpoint), _number(fault.error_rate))
                pipe.gauge(STATSD_FAULT_LATENCY.format(endpoint=endpoint), _number(fault.latency_ms))
            for worker, process in self._processes.items():
                reading = processes.read(process)
                if reading is not None:
                    _process_gauges(pipe, worker, reading)

    def _in_flight_change(self, pipe) -> None:
        with self._lock:
            delta = self._in_flight - self._in_flight_pushed
            self._in_flight_pushed += delta
        if delta:
            pipe.gauge(STATSD_IN_FLIGHT, delta, delta=True)

    def close(self) -> None:
        """Stop the reporter thread and close the socket."""
        self._closed.set()
        clients, self.client, self._retired = (self.client, self._retired), None, None
        for client in clients:
            if client is not None:
                client.close()

    def worker_stopping(self) -> None:
        """Take this process's share out of the gauge, and its figures out of its slot, before it exits."""
        with self._lock:
            self._in_flight = 0
        # The master lives on (slot 0's next worker pushes it); this worker's slot is emptied, and no
        # later gauge push of the reporter thread may fill it again.
        leaving = [worker for worker in self._processes if worker != MASTER]
        self._processes = {}
        client = self.client
        if client is not None:
            with client.pipeline() as pipe:
                self._in_flight_change(pipe)
                for worker in leaving:
                    _process_gauges(pipe, worker, processes.Reading(0.0, 0.0, 0, 0))

    def request_started(self, environ: dict, in_flight: bool = True) -> None:
        if self._reporter_pid != _pid:
            self._start_reporter()
        if in_flight:
            with self._lock:
                self._in_flight += 1
        environ[PIPELINE_KEY] = None  # stats added by this request join its datagram (`_stats`)

    def request_finished(
        self, environ: dict, method: str, endpoint: str, status: int, seconds: float, in_flight: bool = True
    ) -> None:
        if in_flight:
            with self._lock:
                self._in_flight -= 1
        pipe = environ.pop(PIPELINE_KEY, None)
        if pipe is None:
            client = self.client
            if client is None:
                return
            pipe = client.pipeline()
        counter, timer = _request_names(endpoint, method, status)
        pipe.incr(counter)
        pipe.timing(timer, seconds * 1000)
        pipe.send()

    def timing(self, name: str, seconds: float) -> None:
        """Add a timer to the current request's datagram (or send it alone)."""
        self._stats().timing(name, seconds * 1000)

    def incr(self, name: str, count: int = 1) -> None:
        """Add a counter to the current request's datagram (or send it alone)."""
        self._stats().incr(name, count)

    def _stats(self):
        # Inside a request this recorder timed: that request's pipeline, made on first use.
        if has_request_context():
            environ = request.environ
            if PIPELINE_KEY in environ:
                pipe = environ[PIPELINE_KEY]
                if pipe is None and self.client is not None:
                    pipe = environ[PIPELINE_KEY] = self.client.pipeline()
                if pipe is not None:
                    return pipe
        return self.client or _DROP


@functools.lru_cache(maxsize=4096)  # closed sets (endpoints, verbs, statuses): formatted once each
def _request_names(endpoint: str, method: str, status: int) -> tuple[str, str]:
    """The StatsD names of a request's counter and timer (the metric contract), before the prefix."""
    return (
        STATSD_REQUESTS.format(endpoint=endpoint, method=method, status=status),
        STATSD_LATENCY.format(endpoint=endpoint, method=method),
    )


def _process_gauges(pipe, worker: str, reading: processes.Reading) -> None:
    pipe.gauge(STATSD_PROCESS_CPU.format(worker=worker), round(reading.cpu_user + reading.cpu_system, 3))
    pipe.gauge(STATSD_PROCESS_MEMORY.format(worker=worker), reading.rss_bytes)
    pipe.gauge(STATSD_PROCESS_OPEN_FDS.format(worker=worker), reading.open_fds)


def _number(value: float) -> float | int:
    # 1, not 1.0, on the wire: the datagram reads as the fault was set
    return int(value) if value.is_integer() else value


class _Drop:
    """Where stats go while the StatsD host does not resolve."""

    def incr(self, name, count=1):
        pass

    def timing(self, name, ms):
        pass


_DROP = _Drop()


class Counter:
    """The post's StatsD helper, working as the post means it.

        counter = Counter(__name__)
        counter += 1          # pushes {STATSD_PREFIX}.{__name__}:1|c

    The post's version defined only `__add__` and returned nothing, so the first
    `+=` replaced the counter with None. Inside a request the increment joins
    that request's datagram.
    """

    def __init__(self, name: str):
        self.name = name

    def __iadd__(self, count: int) -> "Counter":
        push = current_app.extensions["lab.metrics"].push
        if push is not None:
            push.incr(self.name, count)
        return self
