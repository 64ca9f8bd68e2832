"""`make bench`: what instrumentation and scraping cost, measured on this machine.

Timings here are noisy, so every figure is a ratio or a median from one run
with the variants interleaved (A B C D, A B C D, ...), never an absolute time
compared across runs. Results go to bench/results.md.

1. Throughput and p99 of `/` under wrk, LAB_METRICS=off vs prometheus, statsd,
   all. StatsD datagrams go to a bound socket nobody reads (the app is charged
   only its own cost); a second figure runs the real StatsD daemon.
2. `/metrics` time for 1, 2, 4, 8 workers, and after 0, 100, 500 recycled workers.
3. StatsD datagrams per request.
"""

import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.request import urlopen

from .deps import STATSD_JS
from .settings import ROOT

MODES = ("off", "prometheus", "statsd", "all")
ROUNDS = 5
WRK_SECONDS = 4
WRK_CONNECTIONS = 8
RESULTS = ROOT / "bench" / "results.md"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 10) -> bytes:
    with urlopen(url, timeout=timeout) as response:
        return response.read()


@contextmanager
def app_server(**env):
    """gunicorn with the lab's config on a free port; yield its URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as multiproc:
        environment = {
            **os.environ,
            "APP_HOST": "127.0.0.1",
            "APP_PORT": str(port),
            "PROMETHEUS_MULTIPROC_DIR": multiproc,
            **{k: str(v) for k, v in env.items()},
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "app/gunicorn.conf.py"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _get(url + "/healthz")
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"gunicorn did not start with {env}") from None
                    time.sleep(0.1)
            yield url, Path(multiproc)
        finally:
            process.terminate()
            process.wait(timeout=30)


def wrk(url: str) -> tuple[float, float]:
    """Return (requests per second, p99 latency in ms) of one wrk run."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)$", output, re.MULTILINE).groups()
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def overhead(statsd_port: int, modes=MODES) -> dict[str, dict[str, float]]:
    """Median req/s and p99 per mode, all servers up at once, runs interleaved."""
    runs = {mode: [] for mode in modes}
    with ExitStack() as stack:
        urls = {
            mode: stack.enter_context(
                app_server(LAB_METRICS=mode, STATSD_HOST="127.0.0.1", STATSD_PORT=statsd_port)
            )[0]
            for mode in modes
        }
        for mode in modes:
            wrk(urls[mode] + "/")  # warm up: workers, label children, first datagrams
        for _ in range(ROUNDS):
            for mode in modes:
                runs[mode].append(wrk(urls[mode] + "/"))
    return {
        mode: {
            "rps": statistics.median(rate for rate, _ in results),
            "p99_ms": statistics.median(p99 for _, p99 in results),
        }
        for mode, results in runs.items()
    }


@contextmanager
def unread_udp_socket():
    """A bound UDP port nobody reads: sends succeed and cost the app only the send."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def statsd_daemon():
    """The real StatsD daemon on a free port (flushing to nowhere)."""
    port, admin = _free_port(), _free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as config:
        config.write(
            f'{{"port": {port}, "address": "127.0.0.1", "mgmt_address": "127.0.0.1", "mgmt_port": {admin},'
            f' "backends": [], "flushInterval": 10000, "automaticConfigReload": false}}'
        )
    process = subprocess.Popen(["node", str(STATSD_JS), config.name], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.unlink(config.name)


def scrape_ms(url: str, scrapes: int = 40) -> float:
    times = []
    for _ in range(scrapes):
        started = time.perf_counter()
        _get(url + "/metrics")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def scrape_cost_by_workers() -> dict[int, float]:
    costs = {}
    for workers in (1, 2, 4, 8):
        with app_server(GUNICORN_WORKERS=workers, STATSD_HOST="127.0.0.1", STATSD_PORT=9) as (url, _):
            for path in ("/", "/database/", "/nope", "/error/") * (5 * workers):
                try:
                    _get(url + path)
                except OSError:
                    pass  # 404 and 500 are part of the series set
            costs[workers] = scrape_ms(url)
    return costs


def scrape_cost_after_recycles() -> dict[int, tuple[float, int]]:
    """Scrape time and file count after N workers were recycled (max_requests=1)."""
    costs = {}
    env = {
        "GUNICORN_WORKERS": 4,
        "GUNICORN_MAX_REQUESTS": 1,
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": 9,
        "DB_DELAY_MIN_SECONDS": 0,
        "DB_DELAY_MAX_SECONDS": 0,
    }
    with app_server(**env) as (url, multiproc):
        recycled = 0
        for target in (0, 100, 500):
            while recycled < target:
                try:
                    _get(url + ("/", "/database/", "/nope")[recycled % 3])
                except OSError:
                    pass
                recycled += 1
            # every scrape recycles a worker too: the figure is per scrape after N
            costs[target] = (scrape_ms(url, scrapes=20), len(list(multiproc.glob("*.db"))))
            recycled += 20
    return costs


def datagrams_per_request() -> float:
    with unread_udp_socket() as sock:
        sock.settimeout(0.5)
        port = sock.getsockname()[1]
        with app_server(LAB_METRICS="all", STATSD_HOST="127.0.0.1", STATSD_PORT=port) as (url, _):
            requests_sent = 200
            for _ in range(requests_sent):
                _get(url + "/")
            received = 0
            try:
                while True:
                    datagram = sock.recv(65535)
                    received += b"|g" not in datagram  # gauge deltas are per interval, not per request
            except TimeoutError:
                pass
    return received / requests_sent


def report(over: dict, over_daemon: dict, by_workers: dict, recycles: dict, per_request: float) -> str:
    base, base_daemon = over["off"], over_daemon["off"]
    lines = [
        "# Benchmark results",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; wrk -t1 -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s on `/`, "
        f"{ROUNDS} interleaved rounds, medians.",
        "",
        "## Instrumentation overhead (vs LAB_METRICS=off)",
        "",
        "| LAB_METRICS | throughput ratio | p99 ratio |",
        "| --- | --- | --- |",
    ]
    for mode in MODES[1:]:
        rps, p99 = over[mode]["rps"] / base["rps"], over[mode]["p99_ms"] / base["p99_ms"]
        lines.append(f"| {mode} | {rps:.3f} | {p99:.2f} |")
    lines += [
        "",
        f"With the real StatsD daemon on the same 2 cores: `all` / `off` throughput "
        f"{over_daemon['all']['rps'] / base_daemon['rps']:.3f}, p99 "
        f"{over_daemon['all']['p99_ms'] / base_daemon['p99_ms']:.2f}.",
        "",
        "## Scrape cost (`/metrics`, median ms)",
        "",
        "| workers | 1 | 2 | 4 | 8 |",
        "| --- | --- | --- | --- | --- |",
        "| ms | " + " | ".join(f"{by_workers[w]:.1f}" for w in (1, 2, 4, 8)) + " |",
        "",
        "| recycled workers | 0 | 100 | 500 |",
        "| --- | --- | --- | --- |",
        "| ms | " + " | ".join(f"{recycles[n][0]:.1f}" for n in (0, 100, 500)) + " |",
        "| files in the directory | " + " | ".join(str(recycles[n][1]) for n in (0, 100, 500)) + " |",
        "| ratio to 0 | "
        + " | ".join(f"{recycles[n][0] / recycles[0][0]:.2f}" for n in (0, 100, 500))
        + " |",
        "",
        f"## StatsD datagrams per request: {per_request:.2f}",
        "",
    ]
    return "\n".join(lines)


def run() -> int:
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: `make deps` installs it (Debian package wrk)")
    with unread_udp_socket() as sink:
        over = overhead(sink.getsockname()[1])
    with statsd_daemon() as port:
        over_daemon = overhead(port, modes=("off", "all"))
    text = report(
        over, over_daemon, scrape_cost_by_workers(), scrape_cost_after_recycles(), datagrams_per_request()
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0
