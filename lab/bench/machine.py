"""The bench's machine and load: which CPU runs what, CPU time, the servers it loads, one request, wrk."""

import os
import re
import socket
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from app import signals
from app.config import DEFAULTS as APP_DEFAULTS

from ..peers import PEERS
from ..stack.gunicorn import LAB_CONFIG, STOP_TIMEOUT, Gunicorn
from ..stack.otlp_sink import OtlpSink
from ..stack.processes import pinned

WRK_CONNECTIONS = 4
# Every kind of answer the contract counts: 200, 404, 405, 500, and /database/'s own stats.
MIX = (("GET", "/"), ("GET", "/database/"), ("GET", "/no/such/page"), ("POST", "/"), ("GET", "/error/"))
FAST_DB = {"DB_DELAY_MIN_SECONDS": 0, "DB_DELAY_MAX_SECONDS": 0}
# OTLP exports: the lab's default interval, whatever the shell exports (a shorter one would cost more).
EXPORT_INTERVAL_MS = APP_DEFAULTS["OTEL_METRIC_EXPORT_INTERVAL"]


def cpu_plan() -> tuple[int | None, int | None]:
    """Return (the app's CPU, the load generator's CPU), or (None, None) on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[-1], cpus[0]


def pin_process(pid: int, cpu: int) -> None:
    """Move a running process, every thread of it, to `cpu`."""
    for thread in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(thread.name), {cpu})


def cpu_ns(pids) -> int:
    """CPU time used so far by these processes, every thread (the scheduler's ns count)."""
    total = 0
    for pid in pids:
        try:
            for thread in Path(f"/proc/{pid}/task").iterdir():
                total += int((thread / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _multiproc_parent() -> str | None:
    # The image keeps the multiprocess files on a tmpfs (compose mounts one on /tmp): so does the bench.
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def request(url: str, method: str = "GET", timeout: float = 10) -> bytes:
    """One request on a new connection, as gunicorn's sync worker serves them; 4xx/5xx are answers too."""
    try:
        with urlopen(Request(url, method=method), timeout=timeout) as response:
            return response.read()
    except HTTPError as error:
        return error.read()


class BenchServer(Gunicorn):
    """The app under the lab's gunicorn config, or a peer's (lab/peers), as the bench loads it.

    Its OTLP exports (LAB_METRICS's otel, the otel peer) go to a receiver of its own, `otlp`; with
    `otlp_receivers` above 1, each worker also exports to the others, `otlp_extra`, by a reader and an
    exporter each (OTLP_EXTRA_METRICS_ENDPOINTS, as the HA topology sends to both replicas).
    """

    def __init__(self, cpu: int | None = None, peer: str | None = None, otlp_receivers: int = 1, **env):
        self.otlp = OtlpSink(avoid_cpu=cpu)
        self.otlp_extra = [OtlpSink(avoid_cpu=cpu) for _ in range(otlp_receivers - 1)]
        scraped_by_master = peer is not None and bool(PEERS[peer].scraped_metric)
        # A name the answer to a scrape must hold.
        self.metric_name = PEERS[peer].scraped_metric if scraped_by_master else signals.HTTP_REQUESTS.name
        config = LAB_CONFIG if peer is None else f"python:lab.peers.{peer}"
        settings = {
            "LAB_ADMIN_TOKEN": "",
            "GUNICORN_MAX_REQUESTS": "0",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": self.otlp.url,
            "OTEL_METRIC_EXPORT_INTERVAL": str(EXPORT_INTERVAL_MS),
            "OTLP_EXTRA_METRICS_ENDPOINTS": ",".join(sink.url for sink in self.otlp_extra),
            **env,
        }
        super().__init__(
            config,
            env=settings,
            name=f"gunicorn ({config}) with {env}",
            peer_metrics=scraped_by_master,  # served by gunicorn's master, on a port of its own
            cpu=cpu,
            tmp_dir=_multiproc_parent(),
        )

    @property
    def receivers(self) -> list[OtlpSink]:
        """Every OTLP receiver its workers export to."""
        return [self.otlp, *self.otlp_extra]

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        status = super().stop(timeout)  # the workers' last exports reach `otlp` first
        for sink in self.receivers:
            sink.close()
        return status


@contextmanager
def servers(configs: list[dict]):
    """Start every server at once (they boot in parallel), wait for all; stop them after."""
    started = []
    try:
        for config in configs:
            started.append(BenchServer(**config))
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


@contextmanager
def unread_udp_socket():
    """A bound UDP port nobody reads: sends succeed, the kernel drops what overflows its buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


@dataclass
class Load:
    """What one wrk run did to one server."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ns: int  # the server's workers (and whatever else was charged to it) meanwhile

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_ns / 1000 / max(self.requests, 1)


def _wrk_command(server: BenchServer, seconds: float, cpu: int | None) -> list[str]:
    return pinned(
        ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "--latency", server.url + "/"], cpu
    )


def parse_wrk(output: str) -> tuple[int, float, float, float]:
    """Return (requests, requests/s, p50 ms, p99 ms) from wrk's --latency output."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))

    def percentile(name: str) -> float:
        value, unit = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)$", output, re.MULTILINE).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return requests, rate, percentile("50"), percentile("99")


def load(targets: list[tuple[BenchServer, list[int]]], seconds: float, cpu: int | None) -> list[Load]:
    """Run one wrk per server, all at once, on `cpu`; charge each the CPU of its pids."""
    before = [cpu_ns(pids) for _, pids in targets]
    runs = [
        subprocess.Popen(_wrk_command(server, seconds, cpu), stdout=subprocess.PIPE, text=True)
        for server, _ in targets
    ]
    outputs = [run.communicate()[0] for run in runs]
    for run in runs:
        if run.returncode:
            raise RuntimeError(f"wrk failed: {run.args}")
    spent = [cpu_ns(pids) - start for (_, pids), start in zip(targets, before, strict=True)]
    return [Load(*parse_wrk(output), used) for output, used in zip(outputs, spent, strict=True)]


def rotated(items: list, offset: int) -> list:
    offset %= len(items)
    return items[offset:] + items[:offset]


def send_mix(server: BenchServer, times: int) -> None:
    for number in range(times):
        method, path = MIX[number % len(MIX)]
        request(server.url + path, method)
