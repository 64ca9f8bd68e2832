"""`make bench`: what instrumentation and scraping cost, measured on this machine.

Timings on a small shared machine are noisy, so every figure comes from one run
with the variants interleaved (A B C, B C A, ...), as a ratio or a median shown
with its spread, never a single absolute time. Results go to bench/results.md,
which says what was measured and why that way.

1. Instrumentation overhead of `/` under wrk: LAB_METRICS=off vs prometheus,
   statsd, otel, all. StatsD datagrams go to a bound socket nobody reads, OTLP
   exports to a receiver in the bench's process (OtlpSink), so the app is
   charged only its own cost, its export thread's included; then `all` with
   the real StatsD daemon beside the app, and `all` with StatsD down (host
   unresolvable, nothing listening on its port) vs up. And the OTLP export
   alone, in idle workers.
2. Scrape cost: `/metrics` time for 1, 2, 4, 8 workers, and after 0, 100 and
   500 recycled workers next to a server that never recycled.
3. StatsD datagrams per request.
4. Peers (lab/peers): what a user would pick instead, on the same app with
   LAB_METRICS=off, loaded in the same rounds: prometheus_flask_exporter's
   GunicornPrometheusMetrics next to the lab's pull, a tutorial's pystatsd
   request hooks next to its push, OpenTelemetry's Flask instrumentation next
   to its OTLP push. Worker CPU per request above `off`, and
   the peer's scrape after recycles (section 2) and datagrams (section 3).

Section 1 loads each variant head to head with `off` (both servers on one CPU
at the same time) for the throughput figure, and alone for the p99: see
`overhead`.
"""

import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from app import signals
from app.config import DEFAULTS as APP_DEFAULTS
from app.config import pipelines

from .otlp_sink import OtlpSink
from .peers import PEERS
from .processes import Process, die_with_parent, http_ok
from .settings import ROOT, free_port
from .statsd_daemon import statsd_daemon

RESULTS = ROOT / "bench" / "results.md"
UNRESOLVABLE = "statsd host.invalid"  # the C resolver refuses the space at once: no DNS query leaves

ROUNDS = 5
WARMUP_SECONDS = 1
DUEL_SECONDS = 3
ALONE_SECONDS = 2
WRK_CONNECTIONS = 4
# Every kind of answer the contract counts: 200, 404, 405, 500, and /database/'s own stats.
MIX = (("GET", "/"), ("GET", "/database/"), ("GET", "/no/such/page"), ("POST", "/"), ("GET", "/error/"))
FAST_DB = {"DB_DELAY_MIN_SECONDS": 0, "DB_DELAY_MAX_SECONDS": 0}
# OTLP exports: the lab's default interval, whatever the shell exports (a shorter one would cost more).
EXPORT_INTERVAL_MS = APP_DEFAULTS["OTEL_METRIC_EXPORT_INTERVAL"]
SCRAPES = 40
WORKER_COUNTS = (1, 2, 4, 8)
RECYCLE_CHECKPOINTS = (0, 100, 500)
RECYCLE_WORKERS = 4
# Whose StatsD datagrams are counted: the lab's push, and the tutorial hooks beside it.
DATAGRAM_SUBJECTS = {
    "the lab": {"LAB_METRICS": "all"},
    "tutorial hooks": {"LAB_METRICS": "off", "peer": "statsd_hooks"},
}
# Whose OTLP export is measured alone, in idle workers: the lab's push, the peer's, and `off` for the base.
EXPORT_SUBJECTS = {
    "off": {"LAB_METRICS": "off"},
    "otel": {"LAB_METRICS": "otel"},
    "opentelemetry-instrumentation-flask": {"LAB_METRICS": "off", "peer": "otel_flask"},
}
IDLE_EXPORTS = 6  # intervals an idle window lasts
# Whose scrape is measured after recycles: the lab's, and the peer's that keeps every dead worker's files.
RECYCLE_SUBJECTS = {
    "the lab": {},
    "prometheus_flask_exporter": {"peer": "flask_exporter", "LAB_METRICS": "off"},
}


@dataclass(frozen=True)
class Variant:
    """One server configuration of section 1."""

    name: str
    metrics: str  # LAB_METRICS
    statsd: str  # where its datagrams go: a key of STATSD_TARGETS
    peer: str | None = None  # a module of lab/peers, instrumenting the app instead of the lab

    @property
    def pipeline(self) -> str:
        """The LAB_METRICS pipeline this variant's metrics are: its own, or the one its peer replaces."""
        return self.metrics if self.peer is None else PEERS[self.peer].replaces


STATSD_TARGETS = {
    "unread": "a bound UDP socket nobody reads",
    "daemon": "npm's StatsD daemon, on the app's CPU",
    "unresolvable": "a host name that does not resolve",
    "closed": "a UDP port nobody has bound",
}
REFERENCE = Variant("off", "off", "unread")
# Compared with `off`: the same app with its metrics on, and a second `off` server as a control.
OVERHEAD_VARIANTS = (
    Variant("off, a second server", "off", "unread"),
    Variant("prometheus", "prometheus", "unread"),
    Variant("statsd", "statsd", "unread"),
    Variant("otel", "otel", "unread"),
    Variant("all", "all", "unread"),
    Variant("all, real StatsD daemon", "all", "daemon"),
)
# What a user would pick instead of the lab's pull and push (lab/peers), on the app with LAB_METRICS=off.
PEER_VARIANTS = (
    Variant("prometheus_flask_exporter", "off", "unread", peer="flask_exporter"),
    Variant("statsd, tutorial hooks", "off", "unread", peer="statsd_hooks"),
    Variant("opentelemetry-instrumentation-flask", "off", "unread", peer="otel_flask"),
)
PEER_OF = {variant.pipeline: variant.name for variant in PEER_VARIANTS}  # lab variant -> its peer
# Compared with `all` (StatsD up: its datagrams go to the unread socket).
DOWN_VARIANTS = (
    Variant("all, StatsD host unresolvable", "all", "unresolvable"),
    Variant("all, nothing on the StatsD port", "all", "closed"),
)


# -- machinery -------------------------------------------------------------------------------------


def cpu_plan() -> tuple[int | None, int | None]:
    """Return (the app's CPU, the load generator's CPU), or (None, None) on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[-1], cpus[0]


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def _pin_process(pid: int, cpu: int) -> None:
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


class Server:
    """gunicorn with the lab's config (app/gunicorn.conf.py), or a peer's (lab/peers), on a free port.

    Its OTLP exports (LAB_METRICS's otel, the otel peer) go to a receiver of its own, `otlp`.
    """

    def __init__(self, cpu: int | None = None, peer: str | None = None, **env):
        self.otlp = OtlpSink(avoid_cpu=cpu)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Where the metrics are scraped, and a name the answer must hold.
        self.metrics_url, self.metric_name = self.url + "/metrics", signals.HTTP_REQUESTS.name
        if (
            peer is not None and PEERS[peer].scraped_metric
        ):  # served by gunicorn's master, on a port of its own
            env["PEER_METRICS_PORT"] = free_port()
            self.metrics_url = f"http://127.0.0.1:{env['PEER_METRICS_PORT']}/metrics"
            self.metric_name = PEERS[peer].scraped_metric
        config = "app/gunicorn.conf.py" if peer is None else f"python:lab.peers.{peer}"
        self._dir = tempfile.TemporaryDirectory(prefix="bench-multiproc-", dir=_multiproc_parent())
        self.multiproc = Path(self._dir.name)
        environment = {
            **os.environ,
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(self.port),
            "PROMETHEUS_MULTIPROC_DIR": self._dir.name,
            "LAB_ADMIN_TOKEN": "",
            "GUNICORN_MAX_REQUESTS": "0",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": self.otlp.url,
            "OTEL_METRIC_EXPORT_INTERVAL": str(EXPORT_INTERVAL_MS),
            **{name: str(value) for name, value in env.items()},
        }
        self.process = Process(
            _pinned([sys.executable, "-m", "gunicorn", "--config", config], cpu),
            name=f"gunicorn ({config}) with {env}",
            cwd=ROOT,
            env=environment,
            preexec_fn=die_with_parent,  # a bench stopped with Ctrl-C or killed leaves no server behind
        )

    def workers(self) -> set[int]:
        return set(self.process.children())

    def db_files(self) -> list[str]:
        return sorted(path.name for path in self.multiproc.glob("*.db"))

    def stop(self) -> None:
        self.process.stop(timeout=30)  # the workers' last exports reach `otlp` first
        self.otlp.close()
        self._dir.cleanup()


@contextmanager
def servers(configs: list[dict]):
    """Start every server at once (they boot in parallel), wait for all; stop them after."""
    started = []
    try:
        for config in configs:
            started.append(Server(**config))
        for server in started:
            server.process.wait_ready(http_ok(server.url + "/healthz"), timeout=60)
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


def _wrk_command(server: Server, seconds: float, cpu: int | None) -> list[str]:
    return _pinned(
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


def load(targets: list[tuple[Server, list[int]]], seconds: float, cpu: int | None) -> list[Load]:
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


def check_exported(variant: Variant, server: Server) -> None:
    """Fail if a server that pushes OTLP has no request in its receiver: exporting nothing looks cheap."""
    if "otel" in pipelines(variant.pipeline) and not server.otlp.total(signals.OTEL_REQUEST_DURATION.name):
        raise RuntimeError(f"{variant.name}: no request reached its OTLP receiver ({server.otlp.url})")


def _rotated(items: list, offset: int) -> list:
    offset %= len(items)
    return items[offset:] + items[:offset]


# -- 1. instrumentation overhead ---------------------------------------------------------------------


@dataclass
class Overhead:
    """Per round: head-to-head loads (reference, variant) and loads alone, by variant name."""

    duels: dict[str, list[tuple[Load, Load]]] = field(default_factory=dict)
    alone: dict[str, list[Load]] = field(default_factory=dict)
    rounds: int = 0

    def capacity(self, name: str, base: str = REFERENCE.name) -> list[float]:
        """Throughput ratio per round: requests per CPU-second of `name` over `base`'s.

        Each duel compares a variant with the reference; another base is
        compared through its own duel of the same round.
        """
        mine = [ref.cpu_us_per_request / run.cpu_us_per_request for ref, run in self.duels[name]]
        if base == REFERENCE.name:
            return mine
        return [ratio / theirs for ratio, theirs in zip(mine, self.capacity(base), strict=True)]

    def cpu_above_reference(self, name: str) -> list[float]:
        """Worker CPU µs per request above `off`'s, per round, from the duels."""
        return [run.cpu_us_per_request - ref.cpu_us_per_request for ref, run in self.duels[name]]

    def cost_ratio(self, name: str, other: str) -> list[float]:
        """Per round: `name`'s CPU above `off` over `other`'s (below 1: `name` costs less)."""
        return [
            mine / theirs
            for mine, theirs in zip(
                self.cpu_above_reference(name), self.cpu_above_reference(other), strict=True
            )
        ]

    def alone_ratio(self, name: str, attribute: str, base: str = REFERENCE.name) -> list[float]:
        return [
            getattr(run, attribute) / getattr(reference, attribute)
            for run, reference in zip(self.alone[name], self.alone[base], strict=True)
        ]


def overhead(
    variants=OVERHEAD_VARIANTS + PEER_VARIANTS + DOWN_VARIANTS, rounds: int = ROUNDS, progress=print
) -> Overhead:
    """Every variant in every round, in an order rotated from round to round; fresh servers each round.

    Throughput: each variant and `off` are loaded at the same time, their single
    workers sharing the app's CPU, and each is charged the CPU time its worker
    used (plus the StatsD daemon's, for the daemon variant), so the ratio is
    requests per CPU-second. This machine's speed drifts by a quarter within
    seconds; head to head, the drift hits both alike. Loaded one after the
    other, two identical servers differ by several percent.
    p99: each variant loaded alone (the latency of a shared CPU is the other's).
    """
    app_cpu, load_cpu = cpu_plan()
    result = Overhead({v.name: [] for v in variants}, {v.name: [] for v in (REFERENCE, *variants)}, rounds)
    with ExitStack() as stack:
        sink = stack.enter_context(unread_udp_socket())
        targets = {"unread": ("127.0.0.1", sink.getsockname()[1]), "unresolvable": (UNRESOLVABLE, 8125)}
        daemon_pids = []
        if any(variant.statsd == "daemon" for variant in variants):
            daemon = stack.enter_context(statsd_daemon())
            if app_cpu is not None:
                _pin_process(daemon.process.pid, app_cpu)
            targets["daemon"] = ("127.0.0.1", daemon.port)
            daemon_pids = [daemon.process.pid]
        for number in range(rounds):
            # a port nobody holds, chosen fresh each round
            targets["closed"] = ("127.0.0.1", free_port(socket.SOCK_DGRAM))
            # One hash seed for every server of a round, a new one each round: string hashes
            # (dict layouts) then differ between rounds, not between the servers compared.
            seed = random.randrange(2**32)
            every = (REFERENCE, *variants)
            configs = [
                {
                    "cpu": app_cpu,
                    "PYTHONHASHSEED": seed,
                    "LAB_METRICS": variant.metrics,
                    "STATSD_HOST": targets[variant.statsd][0],
                    "STATSD_PORT": targets[variant.statsd][1],
                    "GUNICORN_WORKERS": 1,
                    "GUNICORN_THREADS": 1,
                    "peer": variant.peer,
                }
                for variant in every
            ]
            with servers(configs) as started:
                by_name = dict(zip((variant.name for variant in every), started, strict=True))
                charged = {
                    variant.name: [*by_name[variant.name].workers()]
                    + (daemon_pids if variant.statsd == "daemon" else [])
                    for variant in every
                }
                order = _rotated([variant.name for variant in variants], number)
                for name in [REFERENCE.name, *order]:  # warm up: copy-on-write faults, first series
                    load([(by_name[name], charged[name])], WARMUP_SECONDS, load_cpu)
                reference = (by_name[REFERENCE.name], charged[REFERENCE.name])
                step = 1 if number % 2 else -1  # which wrk starts first alternates from round to round
                for name in order:
                    pair = [reference, (by_name[name], charged[name])][::step]
                    result.duels[name].append(tuple(load(pair, DUEL_SECONDS, load_cpu)[::step]))
                for name in _rotated([REFERENCE.name, *order], number):
                    result.alone[name] += load([(by_name[name], charged[name])], ALONE_SECONDS, load_cpu)
                for variant in every:
                    check_exported(variant, by_name[variant.name])
            progress(f"  round {number + 1}/{rounds} done")
    return result


@dataclass
class ExportCost:
    """An idle worker over IDLE_EXPORTS intervals."""

    cpu_ns: int
    exports: int  # what its receiver got meanwhile


def export_cost(exports: int = IDLE_EXPORTS) -> dict[str, ExportCost]:
    """The OTLP export thread alone: idle workers' CPU over `exports` intervals, by EXPORT_SUBJECTS.

    Each worker first serves the mix, so it exports the series a live one
    would. Under load this CPU is inside the worker's figure of section 1
    (every thread counts); idle, the export is all that runs besides what
    `off`'s idle worker does too.
    """
    app_cpu, _ = cpu_plan()
    configs = [
        {"cpu": app_cpu, "GUNICORN_WORKERS": 1, **FAST_DB, **subject} for subject in EXPORT_SUBJECTS.values()
    ]
    with servers(configs) as started:
        for server in started:
            send_mix(server, 10 * len(MIX))
        before = [(cpu_ns(server.workers()), server.otlp.exports) for server in started]
        time.sleep(exports * EXPORT_INTERVAL_MS / 1000)
        return {
            name: ExportCost(cpu_ns(server.workers()) - used, server.otlp.exports - received)
            for name, server, (used, received) in zip(EXPORT_SUBJECTS, started, before, strict=True)
        }


# -- 2. scrape cost ------------------------------------------------------------------------------------


def send_mix(server: Server, times: int) -> None:
    for number in range(times):
        method, path = MIX[number % len(MIX)]
        request(server.url + path, method)


def scrape_ms(server: Server) -> float:
    started = time.perf_counter()
    body = request(server.metrics_url)
    elapsed = (time.perf_counter() - started) * 1000
    if server.metric_name.encode() not in body:
        raise RuntimeError(f"{server.metrics_url} answered without {server.metric_name}")
    return elapsed


def samples(server: Server) -> int:
    body = request(server.metrics_url).decode()
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def interleaved_scrapes(targets: list[Server], scrapes: int = SCRAPES) -> list[list[float]]:
    times = [[] for _ in targets]
    for server in targets:  # not counted: the first scrape of a worker imports and maps more
        scrape_ms(server)
    for number in range(scrapes):
        for index in _rotated(list(range(len(targets))), number):
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


def recycle_workers(server: Server, workers: int, timeout: float = 60) -> None:
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


# -- 3. datagrams per request ------------------------------------------------------------------------


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


# -- report --------------------------------------------------------------------------------------------


def _median_range(values: list[float], digits: int = 3) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in (
            "gunicorn",
            "Flask",
            "prometheus_client",
            "statsd",
            "opentelemetry-sdk",
            "prometheus-flask-exporter",
            "opentelemetry-instrumentation-flask",
        )
    )
    return (
        f"{platform.node()}, {len(os.sched_getaffinity(0))} CPUs ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; {versions}"
    )


def _target(variant: Variant) -> str:
    return STATSD_TARGETS[variant.statsd] if variant.pipeline in ("statsd", "all") else "(none sent)"


def _label(variant: Variant) -> str:
    if variant.peer is not None:
        return f"off + {variant.name} (peer)"
    return variant.metrics if variant.name != "off, a second server" else "off (control)"


# Where each compared pipeline's cost goes, per request (section 4).
COST_NOTES = {
    "prometheus": "one counter and one histogram child, kept per (method, route, status) after the first "
    "request, each a write to the worker's mmap file; the in-flight gauge up and down",
    "prometheus_flask_exporter": "`.labels()` looked up on every request for a histogram of 15 default "
    "buckets and a counter, labelled by raw path, in its own before/after_request hooks",
    "statsd": "the names formatted once per (endpoint, method, status), then one pipeline: one `sendto`",
    "statsd, tutorial hooks": "two StatsClient calls, each formatting its name and sending a datagram of "
    "its own: two `sendto`",
    "otel": "the attributes built once per (method, route, status), then one histogram record (the SDK "
    "finds the series by the attributes, under a lock) and the active-requests counter up and down; the "
    "export, in its own thread, collects and encodes every series once per interval",
    "opentelemetry-instrumentation-flask": "the request's attributes collected from the environ twice (its "
    "WSGI wrapper and its before_request hook) and filtered anew for each instrument; a span started "
    "and ended (non-recording: no TracerProvider), the trace context extracted from the headers and "
    "attached, a second context attached for sqlcommenter; the same histogram record and counter as the lab",
}


def results_text(
    over: Overhead,
    by_workers: dict[int, ScrapeCost],
    recycles: dict[str, dict[int, RecycleCost]],
    datagrams: dict[str, tuple[int, int]],
    exports: dict[str, ExportCost],
    elapsed: float,
) -> str:
    app_cpu, load_cpu = cpu_plan()
    pinning = (
        f"gunicorn on CPU {app_cpu}, wrk on CPU {load_cpu} (taskset)"
        if app_cpu is not None
        else "a single CPU: nothing pinned"
    )
    reference = over.alone[REFERENCE.name]
    lines = [
        "# Benchmark results",
        "",
        f"`make bench`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min: {_machine()}.",
        "",
        "## 1. Instrumentation overhead",
        "",
        f"- Load: `wrk -t1 -c{WRK_CONNECTIONS}` on `/`, a new connection per request (sync worker).",
        "- Each server: the app under app/gunicorn.conf.py with one sync worker (GUNICORN_WORKERS=1),",
        "  its multiprocess files on a tmpfs as in the image. One worker on a CPU of its own shows what",
        "  a request costs; the first draft's four servers of four workers on two shared CPUs measured",
        "  the scheduler instead (it found `statsd` faster than `off`).",
        f"- CPUs: {pinning}.",
        f"- {over.rounds} rounds. Each starts fresh servers, warms each up ({WARMUP_SECONDS} s), then loads",
        "  every variant, in an order rotated from round to round.",
        f"- **Throughput ratio**: the variant and `off` loaded at the same time ({DUEL_SECONDS} s), both",
        "  workers sharing the app's CPU, each charged the CPU time its worker used (the daemon's",
        "  too, in the daemon's row): requests per CPU-second, variant / `off`. This machine's speed",
        "  drifts by up to a quarter within seconds; head to head, the drift hits both alike. The",
        "  control row (a second `off` server) shows the noise that is left.",
        f"- **p50 and p99 ratios**: each variant loaded alone ({ALONE_SECONDS} s; on a shared CPU a request",
        "  waits for the other server): wrk's percentiles, variant / `off` of the same round. One",
        "  worker with 4 connections queued: p50 is about 4 service times; p99 catches the machine's",
        "  stalls, as does the throughput of these runs alone (last column, for comparison).",
        "- **OTLP**: each server exports to a receiver of its own on 127.0.0.1, every",
        f"  {EXPORT_INTERVAL_MS} ms as the lab runs: a minimal OTLP/HTTP sink in the bench's process that",
        "  answers 200 to POST /v1/metrics, on the other CPU, so the app's whole export path runs",
        "  (collect, encode, POST) and the receiver's CPU is not the app's. After each round the",
        "  bench checks that every server pushing OTLP (`otel`, `all`, the OpenTelemetry peer) had",
        "  its requests counted by its receiver. The export runs in a thread of the worker (the",
        "  SDK's PeriodicExportingMetricReader): a worker's CPU is the scheduler's count for every",
        "  thread of it (/proc/PID/task/*/schedstat), so the export's CPU is in its figure, as the",
        f"  StatsD gauge thread's is. A {DUEL_SECONDS} s duel holds none or one export: the table below",
        "  the StatsD one says what an export costs.",
        "",
        "Each figure is the median over the rounds, (min–max) beside it. Throughput: above 1 is",
        "faster. Latency: below 1 is faster.",
        "",
        "| LAB_METRICS | StatsD datagrams go to | throughput ratio | p50 ratio | p99 ratio | "
        "throughput, alone |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant in OVERHEAD_VARIANTS + PEER_VARIANTS:
        if variant.name not in over.duels:
            continue
        lines.append(
            f"| {_label(variant)} | {_target(variant)} | {_median_range(over.capacity(variant.name))} | "
            f"{_median_range(over.alone_ratio(variant.name, 'p50_ms'), 2)} | "
            f"{_median_range(over.alone_ratio(variant.name, 'p99_ms'), 2)} | "
            f"{_median_range(over.alone_ratio(variant.name, 'rps'))} |"
        )
    lines += [
        "",
        f"`off` alone, for scale: {_median_range([run.rps for run in reference], 0)} requests/s, p99 "
        f"{_median_range([run.p99_ms for run in reference], 1)} ms, "
        f"{_median_range([run.cpu_us_per_request for run in reference], 0)} µs of worker CPU per request.",
        "",
        "StatsD down, vs up (LAB_METRICS=all, datagrams to the unread socket), same rounds:",
        "",
        "| StatsD | throughput ratio | p50 ratio | p99 ratio | throughput, alone |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant in DOWN_VARIANTS:
        if variant.name not in over.duels:
            continue
        lines.append(
            f"| {STATSD_TARGETS[variant.statsd]} | {_median_range(over.capacity(variant.name, 'all'))} | "
            f"{_median_range(over.alone_ratio(variant.name, 'p50_ms', 'all'), 2)} | "
            f"{_median_range(over.alone_ratio(variant.name, 'p99_ms', 'all'), 2)} | "
            f"{_median_range(over.alone_ratio(variant.name, 'rps', 'all'))} |"
        )
    idle = exports[REFERENCE.name]
    lines += [
        "",
        f"The OTLP export alone: idle workers, each after serving the mix, over {IDLE_EXPORTS} intervals of",
        f"{EXPORT_INTERVAL_MS} ms: worker CPU above an idle `off` worker's, per export received.",
        "",
        "| pushing | exports received | worker CPU per export, ms | the same, ms per second |",
        "| --- | --- | --- | --- |",
    ]
    for name, cost in exports.items():
        if name == REFERENCE.name:
            continue
        per_export = (cost.cpu_ns - idle.cpu_ns) / 1e6 / max(cost.exports, 1)
        lines.append(
            f"| {name} | {cost.exports} | {per_export:.2f} | {per_export * 1000 / EXPORT_INTERVAL_MS:.2f} |"
        )
    lines += [
        "",
        "## 2. Scrape cost",
        "",
        f"`/metrics` on a new connection, {SCRAPES} scrapes per server, interleaved between the servers;",
        "every worker first served the mix (`/`, `/database/`, a 404, a 405, a 500); nothing pinned.",
        "Milliseconds.",
        "",
        "| workers | p50 | p25–p75 | max | `*.db` files | samples |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for workers, cost in by_workers.items():
        q1, q2, q3 = statistics.quantiles(cost.ms, n=4, method="inclusive")
        spread = f"{q1:.1f}–{q3:.1f} | {max(cost.ms):.1f}"
        lines.append(f"| {workers} | {q2:.1f} | {spread} | {cost.files} | {cost.samples} |")
    lines += [
        "",
        f"After N recycled workers: {RECYCLE_WORKERS} workers, recycled by serving the mix then a SIGTERM to",
        "each (a graceful exit, as after `max_requests`) until N have gone, then scraped in a steady state,",
        "interleaved with a server of the same config that never recycled; the same for",
        "prometheus_flask_exporter (lab/peers/flask_exporter.py, its metrics server in gunicorn's master).",
        "The lab's archive (app/multiproc.py) folds each dead worker's files into one per type, so its",
        "directory holds the live workers' files plus the archives, whatever N. prometheus_flask_exporter's",
        "`mark_process_dead_on_child_exit` removes a dead worker's live gauges only: every other file stays,",
        "and every scrape reads them all. Ratio: recycled / fresh p50.",
        "",
        "| recycled workers | "
        + " | ".join(f"{name}: p50 ms (fresh) | ratio | `*.db` files" for name in recycles)
        + " |",
        "| --- |" + " --- | --- | --- |" * len(recycles),
    ]
    for target in RECYCLE_CHECKPOINTS:
        cells = []
        for cost in (by_target[target] for by_target in recycles.values()):
            recycled, fresh = statistics.median(cost.recycled), statistics.median(cost.fresh)
            cells.append(
                f"{recycled:.1f} ({fresh:.1f}) | {recycled / fresh:.2f} | {cost.files} ({cost.files_fresh})"
            )
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## 3. StatsD datagrams per request",
        "",
        "Counted by a socket that reads them all, over the mix (the lab's in-flight gauge, pushed once a",
        "second by a background thread, aside).",
        "",
        "| sender | datagrams per request |",
        "| --- | --- |",
    ]
    for name, (received, sent) in datagrams.items():
        lines.append(f"| {name} | {received / sent:.2f} ({received} for {sent} requests) |")
    lines += [
        "",
        "## 4. Against the peers",
        "",
        "What a user would pick instead (lab/peers): each peer is the app with LAB_METRICS=off plus the",
        "peer's instrumentation, under the same gunicorn settings, loaded in the same rounds as section 1.",
        "The OpenTelemetry peer (lab/peers/otel_flask.py) records the same `http.server.request.duration`",
        "in seconds (OTEL_SEMCONV_STABILITY_OPT_IN=http) into the lab's buckets (a View), and exports it",
        "over OTLP/HTTP to the same kind of receiver at the same interval.",
        "**µs above `off`**: the worker CPU per request of the variant minus `off`'s, in their head-to-head",
        "duel, median (min–max) over the rounds. **lab / peer**: the lab's µs above `off` over the peer's,",
        "per round: below 1, the lab costs less.",
        "",
        "| pipeline | lab: µs above `off` | peer | peer: µs above `off` | lab / peer |",
        "| --- | --- | --- | --- | --- |",
    ]
    for lab, peer in PEER_OF.items():
        if lab not in over.duels or peer not in over.duels:
            continue
        lines.append(
            f"| {lab} | {_median_range(over.cpu_above_reference(lab), 1)} | {peer} | "
            f"{_median_range(over.cpu_above_reference(peer), 1)} | "
            f"{_median_range(over.cost_ratio(lab, peer), 2)} |"
        )
    lines += ["", "Where the cost goes, per request:", ""]
    lines += [f"- {name}: {note}." for name, note in COST_NOTES.items()]
    lines.append("")
    return "\n".join(lines)


def run() -> int:
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: `make deps` installs it (Debian package wrk)")
    started = time.monotonic()
    variants = OVERHEAD_VARIANTS + PEER_VARIANTS + DOWN_VARIANTS
    print(f"1/3 instrumentation overhead, the peers' too: {len(variants) + 1} servers, {ROUNDS} rounds")
    over = overhead(variants)
    print(f"    the OTLP export alone: idle workers, {IDLE_EXPORTS * EXPORT_INTERVAL_MS / 1000:g} s")
    exports = export_cost()
    print("2/3 scrape cost, by workers and after recycles (the lab's and prometheus_flask_exporter's)")
    by_workers = scrape_cost_by_workers()
    recycles = scrape_cost_after_recycles()
    print("3/3 StatsD datagrams per request (the lab's and the tutorial hooks')")
    datagrams = {name: datagrams_per_request(**subject) for name, subject in DATAGRAM_SUBJECTS.items()}
    text = results_text(over, by_workers, recycles, datagrams, exports, time.monotonic() - started)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0
