"""Sections 2 and 3: what a scrape of /metrics costs, by workers and after recycles; StatsD datagrams
per request."""

import os
import signal
import time
from dataclasses import dataclass

from ..settings import UNRESOLVABLE
from .machine import FAST_DB, MIX, BenchServer, request, rotated, send_mix, servers, unread_udp_socket

SCRAPES = 40
WORKER_COUNTS = (1, 2, 4, 8)
RECYCLE_CHECKPOINTS = (0, 100, 500)
RECYCLE_WORKERS = 4
# Whose StatsD datagrams are counted: the lab's push, and the tutorial hooks beside it.
DATAGRAM_SUBJECTS = {
    "the lab": {"LAB_METRICS": "all"},
    "tutorial hooks": {"LAB_METRICS": "off", "peer": "statsd_hooks"},
}


# Whose scrape is measured after recycles: the lab's, and the peer's that keeps every dead worker's files.
RECYCLE_SUBJECTS = {
    "the lab": {},
    "prometheus_flask_exporter": {"peer": "flask_exporter", "LAB_METRICS": "off"},
}


def scrape_ms(server: BenchServer) -> float:
    started = time.perf_counter()
    body = request(server.metrics_url)
    elapsed = (time.perf_counter() - started) * 1000
    if server.metric_name.encode() not in body:
        raise RuntimeError(f"{server.metrics_url} answered without {server.metric_name}")
    return elapsed


def samples(server: BenchServer) -> int:
    return exposed_samples(request(server.metrics_url).decode())


def exposed_samples(body: str) -> int:
    """The samples of a /metrics answer in the text format: its lines that are not comments."""
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def interleaved_scrapes(targets: list[BenchServer], scrapes: int = SCRAPES) -> list[list[float]]:
    times = [[] for _ in targets]
    for server in targets:  # not counted: the first scrape of a worker imports and maps more
        scrape_ms(server)
    for number in range(scrapes):
        for index in rotated(list(range(len(targets))), number):
            times[index].append(scrape_ms(targets[index]))
    return times


@dataclass
class ScrapeCost:
    ms: list[float]
    files: int
    samples: int


def scrape_cost_by_workers(counts=WORKER_COUNTS) -> dict[int, ScrapeCost]:
    configs = [{"GUNICORN_WORKERS": workers, "STATSD_HOST": UNRESOLVABLE, **FAST_DB} for workers in counts]
    with servers(configs) as started:
        for server, workers in zip(started, counts, strict=True):
            # new connections, spread by the kernel: each worker ends up with (nearly) every series
            send_mix(server, 25 * workers)
        times = interleaved_scrapes(started)
        return {
            workers: ScrapeCost(ms, len(server.db_files()), samples(server))
            for workers, server, ms in zip(counts, started, times, strict=True)
        }


def recycle_workers(server: BenchServer, workers: int, timeout: float = 60) -> None:
    """Serve the mix, then SIGTERM every worker (a graceful exit, as after max_requests).

    Return once all their successors have booted.
    """
    send_mix(server, 4 * workers)
    old = server.workers()
    for pid in old:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while True:
        new = server.workers() - old
        # a worker has booted once it has mapped a metric file (the lab's live gauge, the peer's info gauge)
        if len(new) == workers and all(any(server.multiproc.glob(f"*_{p}.db")) for p in new):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not replace its recycled workers")
        time.sleep(0.01)


@dataclass
class RecycleCost:
    recycled: list[float]
    fresh: list[float]
    files: int
    files_fresh: int


def scrape_cost_after_recycles(
    checkpoints=RECYCLE_CHECKPOINTS, workers: int = RECYCLE_WORKERS, progress=print
) -> dict[str, dict[int, RecycleCost]]:
    """Scrape servers whose workers were recycled N times, interleaved with ones never recycled.

    For the lab and for prometheus_flask_exporter (RECYCLE_SUBJECTS): a
    recycled and a fresh server each, all serving the same mix. The recycled
    ones are scraped in a steady state (no recycle during the scrapes), so the
    figure is what N dead workers leave behind.
    """
    config = {"GUNICORN_WORKERS": workers, "STATSD_HOST": UNRESOLVABLE, **FAST_DB}
    configs = [{**config, **subject} for subject in RECYCLE_SUBJECTS.values() for _ in ("recycled", "fresh")]
    costs = {name: {} for name in RECYCLE_SUBJECTS}
    with servers(configs) as started:
        pairs = dict(zip(RECYCLE_SUBJECTS, zip(started[::2], started[1::2], strict=True), strict=True))
        done = 0
        for target in checkpoints:
            while done < target:
                for recycled, fresh in pairs.values():
                    recycle_workers(recycled, workers)
                    send_mix(fresh, 4 * workers)
                done += workers
            for recycled, fresh in pairs.values():
                send_mix(recycled, 25 * workers)  # the live workers hold every series
                send_mix(fresh, 25 * workers)
            times = iter(interleaved_scrapes([server for pair in pairs.values() for server in pair]))
            for name, (recycled, fresh) in pairs.items():
                costs[name][target] = RecycleCost(
                    next(times), next(times), len(recycled.db_files()), len(fresh.db_files())
                )
            progress(f"  {done} workers recycled, in each of {len(pairs)} servers")
    return costs


def datagrams_per_request(requests: int = 200, **subject) -> tuple[int, int]:
    """Return (datagrams, requests) for the mix, read by a socket that keeps up.

    `subject`: the server's settings (LAB_METRICS, or a peer), from DATAGRAM_SUBJECTS.

    A request's datagram leaves before its answer, and loopback delivers at
    once: after each answer, everything it sent is already in the socket.
    """
    with unread_udp_socket() as sock:
        sock.setblocking(False)
        config = {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": sock.getsockname()[1], **subject}

        def drain() -> int:
            count = 0
            while True:
                try:
                    datagram = sock.recv(65535)
                except BlockingIOError:
                    return count
                # the in-flight gauge goes out once a second by itself, not per request
                count += b"|g" not in datagram

        with servers([{**config, **FAST_DB}]) as (server,):
            drain()
            received = 0
            for number in range(requests):
                method, path = MIX[number % len(MIX)]
                request(server.url + path, method)
                received += drain()
            time.sleep(0.2)
            received += drain()
    return received, requests
