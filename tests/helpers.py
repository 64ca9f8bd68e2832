"""Small tools the tests share: parse a scrape, listen like StatsD or an OTLP receiver, find a port."""

import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.semconv.attributes.service_attributes import SERVICE_INSTANCE_ID
from prometheus_client.parser import text_string_to_metric_families

from lab.backends import Prometheus, wait_for
from lab.processes import Process, http_ok
from lab.settings import free_port

ROOT = Path(__file__).resolve().parent.parent
# A host name that never resolves. The space makes the C resolver refuse it on
# the spot, so the tests send no DNS query off this machine.
UNRESOLVABLE = "statsd host.invalid"


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

    def datagrams(self, wait: float = 0.2) -> list[str]:
        """Return what arrived, waiting up to `wait` s for stragglers."""
        received = []
        self.sock.settimeout(wait)
        try:
            while True:
                received.append(self.sock.recv(65535).decode())
        except TimeoutError:
            return received

    def stats(self, wait: float = 0.2) -> Counter:
        """Count each StatsD line (`name:value|type`) that arrived."""
        return Counter(line for datagram in self.datagrams(wait) for line in datagram.split("\n"))


class OtlpPoint(NamedTuple):
    """One data point of an OTLP export: a histogram's count or a sum's value."""

    instance: str  # the exporting process's service.instance.id
    metric: str
    attributes: frozenset
    value: float  # a sum's value, or a histogram's count


class OtlpListener:
    """An OTLP/HTTP metrics receiver on 127.0.0.1 that keeps the newest point of each series.

    Exports are cumulative: the newest point of a series is its total, and the
    totals of all instances add up to what every process recorded.
    """

    def __init__(self):
        self.exports = 0
        self.answer = 200  # what the receiver answers; 503 plays a receiver that is down
        self.units: dict[str, str] = {}  # metric -> its unit
        self.bounds: dict[str, list[float]] = {}  # histogram -> its bucket edges
        self._latest: dict[tuple, OtlpPoint] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}/v1/metrics"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if listener.answer == 200:
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    listener._keep(request)
                self.send_response(listener.answer)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass  # quiet: the tests read the points

        return Handler

    def _keep(self, request) -> None:
        with self._lock:
            self.exports += 1
            for resource_metrics in request.resource_metrics:
                resource = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
                instance = resource.get(SERVICE_INSTANCE_ID, "")
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        self.units[metric.name] = metric.unit
                        for point in getattr(metric, kind).data_points:
                            attributes = frozenset((kv.key, _any_value(kv.value)) for kv in point.attributes)
                            if kind == "histogram":
                                value = point.count
                                self.bounds[metric.name] = list(point.explicit_bounds)
                            else:
                                value = (
                                    point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                                )
                            key = (instance, metric.name, attributes)
                            self._latest[key] = OtlpPoint(instance, metric.name, attributes, value)

    def points(self, metric: str) -> list[OtlpPoint]:
        with self._lock:
            return [point for point in self._latest.values() if point.metric == metric]

    def total(self, metric: str, attributes: dict | None = None) -> float:
        """The sum over instances of the newest value of every series that has these attributes."""
        wanted = set((attributes or {}).items())
        return sum(point.value for point in self.points(metric) if wanted <= point.attributes)

    def instances(self) -> set[str]:
        with self._lock:
            return {point.instance for point in self._latest.values()}


def _any_value(value):
    return getattr(value, value.WhichOneof("value"))


class Gunicorn(NamedTuple):
    url: str
    process: Process
    multiproc_dir: Path

    def worker_pids(self) -> list[int]:
        return self.process.children()

    def scrape(self) -> dict:
        return samples(requests.get(self.url + "/metrics", timeout=10).text)


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
    """Run the app under real gunicorn on a free port, in its own multiprocess dir."""
    url = f"http://127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as multiproc:
        environment = {
            **os.environ,
            "APP_HOST": "127.0.0.1",
            "APP_PORT": url.rsplit(":", 1)[1],
            "PROMETHEUS_MULTIPROC_DIR": multiproc,
            **env,
        }
        argv = [sys.executable, "-m", "gunicorn", "--config", "app/gunicorn.conf.py"]
        with serving(argv, url + "/healthz", name="gunicorn", cwd=ROOT, env=environment) as process:
            yield Gunicorn(url, process, Path(environment["PROMETHEUS_MULTIPROC_DIR"]))


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
