"""Section 7: what the processes' own figures (app/processes.py) cost each pipeline.

Each pipeline reads them at a different moment, and each cost is measured there, A against B
interleaved in one run, as ratios and medians of this machine:

- pull: a scrape of 4 workers' /metrics, against the part of it that reads the 5 processes
  (WorkerProcesses.collect, run in the bench's process on the server's directory);
- OTLP: one collection of a provider holding the lab's request instruments, with and without
  opentelemetry-instrumentation-system-metrics on it (the work of each export, before encoding);
- StatsD: one gauge push of the in-flight gauge and the faults, with and without the process
  gauges of a worker in slot 0 (its own and the master's), and the bytes they add.
"""

import socket
import statistics
import time
from dataclasses import dataclass

import requests

from app.labels import UNMATCHED_ROUTE
from app.otel import PROCESS_METRICS_CONFIG
from app.pull import WorkerProcesses
from app.push import PushRecorder
from app.signals import OTEL_REQUEST_DURATION

from ..polling import wait_for
from ..settings import LOOPBACK
from ..stack.gunicorn import Gunicorn

HEADING = "## 7. The processes' own figures"
ROUNDS = 200
WORKERS = 4


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


@dataclass
class ProcessesCost:
    scrape_us: float  # a whole scrape of WORKERS workers, over HTTP
    collect_us: float  # the processes' part of it
    export_us: tuple[float, float]  # one collection: without, with the system metrics
    push_us: tuple[float, float]  # one gauge push: without, with the process gauges
    push_bytes: tuple[int, int]  # its datagram's bytes: without, with


def scrape_part(rounds: int = ROUNDS) -> tuple[float, float]:
    """A scrape of the lab's /metrics (WORKERS workers) and the processes' part, interleaved."""
    server = Gunicorn(
        env={"GUNICORN_WORKERS": WORKERS, "LAB_METRICS": "prometheus"}, inherit_app_settings=False
    )
    with server:
        server.wait_ready()
        collector = WorkerProcesses(str(server.multiproc))
        # every worker has named its slot: the collector reads all WORKERS of them, and the master
        named = wait_for(lambda: len(collector.collect()[0].samples), lambda n: n > WORKERS, 30, interval=0.1)
        if named <= WORKERS:
            raise RuntimeError(f"only {named} of {WORKERS + 1} gunicorn processes named their slots in 30 s")
        session = requests.Session()
        scrapes, parts = [], []
        for _ in range(rounds):
            scrapes.append(_timed(lambda: session.get(server.metrics_url, timeout=10).raise_for_status()))
            parts.append(_timed(collector.collect))
    return _median_us(scrapes), _median_us(parts)


def export_part(rounds: int = ROUNDS) -> tuple[float, float]:
    """One collection (an export's work before encoding) of a provider holding the request histogram
    of a few routes and statuses, without and with the system metrics' process instruments."""
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    readers = (InMemoryMetricReader(), InMemoryMetricReader())
    providers = [MeterProvider(metric_readers=[reader]) for reader in readers]
    for provider in providers:
        histogram = provider.get_meter("bench").create_histogram(OTEL_REQUEST_DURATION.name, unit="s")
        for route in ("/", "/database/", "/error/", UNMATCHED_ROUTE.template):
            for status in (200, 404, 500):
                histogram.record(0.01, {"http.route": route, "http.response.status_code": status})
    instrumentor = SystemMetricsInstrumentor(config=PROCESS_METRICS_CONFIG)
    instrumentor.instrument(meter_provider=providers[1])
    times = ([], [])
    try:
        for _ in range(rounds):
            for index, reader in enumerate(readers):
                times[index].append(_timed(reader.get_metrics_data))
    finally:
        instrumentor.uninstrument()
        for provider in providers:
            provider.shutdown()
    return _median_us(times[0]), _median_us(times[1])


def push_part(rounds: int = ROUNDS) -> tuple[tuple[float, float], tuple[int, int]]:
    """One gauge push without and with a slot-0 worker's process gauges (this process's and its
    parent's): its time, and the bytes of its datagram (none without: nothing changed to push)."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((LOOPBACK, 0))
    receiver.settimeout(0.5)
    port = receiver.getsockname()[1]
    plain, with_processes = (
        PushRecorder(LOOPBACK, port, "bench", gauge_interval=3600, resolve_interval=3600) for _ in range(2)
    )
    with_processes.worker_started(slot=0)
    sizes = []
    for recorder in (plain, with_processes):
        recorder.push_gauges()
        try:
            sizes.append(len(receiver.recv(65535)))
        except TimeoutError:
            sizes.append(0)
    times = ([], [])
    for _ in range(rounds):
        for index, recorder in enumerate((plain, with_processes)):
            times[index].append(_timed(recorder.push_gauges))
    for recorder in (plain, with_processes):
        recorder.close()
    receiver.close()
    return (_median_us(times[0]), _median_us(times[1])), (sizes[0], sizes[1])


def processes_cost(rounds: int = ROUNDS) -> ProcessesCost:
    scrape_us, collect_us = scrape_part(rounds)
    return ProcessesCost(scrape_us, collect_us, export_part(rounds), *push_part(rounds))


def processes_text(cost: ProcessesCost) -> list[str]:
    """Section 7 of bench/results.md."""
    (plain_export, with_export), (plain_push, with_push) = cost.export_us, cost.push_us
    return [
        HEADING,
        "",
        f"Medians of {ROUNDS} rounds, A and B interleaved in one run (lab/bench/processes.py): what reading "
        "each gunicorn process's CPU, memory and open files adds where each pipeline reads them.",
        "",
        "| pipeline | where it is read | without | with | added |",
        "| --- | --- | --- | --- | --- |",
        f"| pull | a scrape of {WORKERS} workers (HTTP), and the part reading the {WORKERS + 1} processes | "
        f"{cost.scrape_us - cost.collect_us:.0f} µs (the scrape less that part) | {cost.scrape_us:.0f} µs | "
        f"{cost.collect_us:.0f} µs "
        f"({cost.collect_us / cost.scrape_us:.0%} of the scrape) |",
        f"| OTLP | one collection of a worker's provider (12 request series) | {plain_export:.0f} µs | "
        f"{with_export:.0f} µs | {with_export - plain_export:.0f} µs an export "
        f"({with_export / plain_export:.1f}x) |",
        f"| StatsD | one gauge push of a worker in slot 0 (its own and the master's gauges) | "
        f"{plain_push:.0f} µs, {cost.push_bytes[0]} B | {with_push:.0f} µs, {cost.push_bytes[1]} B | "
        f"{with_push - plain_push:.0f} µs and {cost.push_bytes[1] - cost.push_bytes[0]} B a push |",
        "",
        "None of it is on the request path: a scrape, an export or a gauge push pays it, once per "
        "interval, whatever the traffic.",
        "",
    ]
