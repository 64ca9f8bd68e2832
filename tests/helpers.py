"""Small tools the tests share: parse a scrape, listen like StatsD, find a port."""

import contextlib
import json
import os
import signal
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from lab.backends import OtlpReceiver, Prometheus
from lab.polling import wait_for
from lab.settings import free_port
from lab.stack import native_config
from lab.stack.deps import VICTORIA_METRICS
from lab.stack.gunicorn import Gunicorn
from lab.stack.processes import Process, http_ok

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))


def opened(path: Path) -> dict:
    """A committed dashboard as Grafana opens it: a datasource named by a datasource variable
    (`"uid": "${datasource}"`) is the one that variable starts on, the provisioned Prometheus."""
    board = json.loads(path.read_text())
    chosen = {
        "${" + v["name"] + "}": v["current"]["value"]
        for v in board["templating"]["list"]
        if v["type"] == "datasource"
    }

    def resolve(node):
        if isinstance(node, dict):
            return {k: chosen.get(v, v) if k == "uid" else resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(board)


def samples(exposition: str) -> dict[tuple[str, frozenset], float]:
    """Map (sample name, labels) to value for every sample of a scrape."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels) -> float:
    """Return one sample's value; 0 when the series does not exist (yet)."""
    return scraped.get((name, frozenset(labels.items())), 0.0)


def series_of(scraped: dict, name: str) -> set[frozenset]:
    """Return the label sets of every sample named `name`."""
    return {labels for sample, labels in scraped if sample == name}


# The kernel's own figures of a process, read from /proc: the truth the process metrics are held to.
TICK = 1 / os.sysconf("SC_CLK_TCK")  # the kernel counts CPU time in ticks


def proc_cpu(pid: int) -> float:
    """utime + stime from /proc/<pid>/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK


def proc_rss(pid: int) -> int:
    """VmRSS from /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class UdpListener:
    """A bound UDP socket on 127.0.0.1 that collects the datagrams sent to it."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def datagrams(self, wait: float = 0.2, at_most: float = 30) -> list[str]:
        """Return what arrived, waiting up to `wait` s for stragglers; at most `at_most` s in all (a
        sender that never pauses, as gauge pushes every 0.1 s, would keep it reading forever)."""
        received = []
        deadline = time.monotonic() + at_most
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(min(wait, left))
            try:
                received.append(self.sock.recv(65535).decode())
            except TimeoutError:
                break
        return received

    def stats(self, wait: float = 0.2) -> Counter:
        """Count each StatsD line (`name:value|type`) that arrived."""
        return Counter(line for datagram in self.datagrams(wait) for line in datagram.split("\n"))


class ServedApp(Gunicorn):
    """The app under real gunicorn (lab/stack/gunicorn.py), as the tests read it."""

    def scrape(self) -> dict:
        return samples(requests.get(self.url + "/metrics", timeout=10).text)


def wait_for_workers(server, capacity: int, timeout: float = 20, gone: list[int] = ()) -> None:
    """Wait until gunicorn's workers have all started (post_worker_init counts each one's capacity,
    workers x threads) and their capacity sums to `capacity`: at start, as after it replaced killed or
    recycled ones. gunicorn answers once its first worker does, and a scrape sums only the workers that
    have started by then.

    Until the master has reaped a killed worker (`gone`), its capacity still counts:
    a scrape in between would read the old total and pass too early.
    """

    def live_capacity() -> float | None:
        try:
            if set(gone) & set(server.workers()):
                return None  # not reaped yet
            return value(server.scrape(), "http_requests_capacity")
        except requests.ConnectionError:
            return None

    if wait_for(live_capacity, lambda seen: seen == capacity, timeout, interval=0.1) != capacity:
        raise AssertionError(f"gunicorn's workers did not get to a capacity of {capacity} in {timeout} s")


@contextlib.contextmanager
def serving(argv: list[str], ready_url: str, **options):
    """Run `argv` until the block ends, once `ready_url` answers 200; print its output if the block fails.

    `options` are lab.processes.Process's: name, cwd, env...
    """
    with tempfile.TemporaryDirectory() as logs:
        process = Process(argv, log=Path(logs) / "output.log", **options)
        try:
            process.wait_ready(http_ok(ready_url), timeout=20)
            yield process
        except BaseException:
            print(process.tail(lines=100))
            raise
        finally:
            # A server that ignores SIGTERM fails the test: in the lab, it would hang a stop.
            if process.stop(timeout=30) == -signal.SIGKILL:
                raise RuntimeError(f"{process.name} had to be killed: SIGTERM did not stop it in 30 s")


@contextlib.contextmanager
def gunicorn(**env):
    """Run the app under real gunicorn on a free port, in its own multiprocess dir; print its log if the
    block fails, and fail if SIGTERM did not stop it."""
    with tempfile.TemporaryDirectory() as logs:
        app = ServedApp(env=env, log=Path(logs) / "output.log")
        try:
            app.wait_ready(timeout=20)
            yield app
        except BaseException:
            print(app.process.tail(lines=100))
            raise
        finally:
            if app.stop() == -signal.SIGKILL:
                raise RuntimeError("gunicorn had to be killed: SIGTERM did not stop it in 30 s")


def wait_until(read, expected, timeout: float, what: str):
    """Poll `read()` until it returns `expected`; fail naming what and the last value seen."""
    seen = wait_for(read, lambda value: value == expected, timeout)
    assert seen == expected, f"{what}: expected {expected}, got {seen}"


@contextlib.contextmanager
def prometheus_scraping(target_url: str, data_dir: Path, interval: str = "250ms"):
    """Debian's Prometheus on a free port, scraping `target_url` as job "app"; yields its client."""
    url = f"http://127.0.0.1:{free_port()}"
    config = data_dir / "prometheus.yml"
    target = target_url.removeprefix("http://")
    config.write_text(
        f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n"
        f"scrape_configs: [{{job_name: app, static_configs: [{{targets: ['{target}']}}]}}]\n"
    )
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir / 'tsdb'}",
        f"--web.listen-address={url.removeprefix('http://')}",
    ]
    with serving(argv, url + "/-/ready", name="prometheus"):
        yield Prometheus(url)


@contextlib.contextmanager
def otlp_receiving(data_dir: Path, port: int):
    """The native stack's OTLP receiver on `port`, as lab/stack/native.py runs it; data in data_dir."""
    native_config.write_otlp_relabel(data_dir)
    argv = [str(VICTORIA_METRICS), *native_config.otlp_receiver_argv(port, data_dir)]
    url = f"http://127.0.0.1:{port}"
    with serving(argv, url + "/health", name="otlp-receiver"):
        yield OtlpReceiver(url)
