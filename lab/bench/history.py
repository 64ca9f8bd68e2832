"""A month of the lab's series, as Prometheus would have scraped them, and their continuation live.

Section 5 (month.py) needs what a stack holds after 30 days: the app's request counter and
latency histogram, one sample every scrape interval, for the load generator's mix of routes
(loadgen/locustfile.py's task weights, at locust.conf's users, one request per second each),
and the 5-minute rates the SLO groups record from them. `promtool tsdb create-blocks-from
openmetrics` turns each day, written as OpenMetrics with timestamps, into TSDB blocks; Prometheus
then opens them as its own history, and `LiveMetrics` serves the same series on from where the
history stops, so that the scrapes after it continue each series without a gap or a reset.

The counts follow a daily cycle (half again as many requests at the afternoon's peak, half as many
at night) with random rounding, so the samples compress as real counters do; the latency shape is
plausible, not measured (what a rule costs depends on how many samples it reads, not their values).
"""

import ast
import math
import random
import re
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from app.signals import LATENCY_BUCKETS, UNMATCHED

from ..settings import LOOPBACK, ROOT

LOCUSTFILE = ROOT / "loadgen" / "locustfile.py"
LOCUST_CONF = ROOT / "loadgen" / "locust.conf"
DAY = 86400
RATE_WINDOW = 300  # the SLO groups' recorded rates: rate(...[5m])
# Cumulative share of a route's requests at or below each bucket edge (the rest above the last).
FAST = {0.005: 0.55, 0.01: 0.85, 0.025: 0.95, 0.05: 0.98, 0.1: 0.99, 0.25: 0.995, 0.3: 0.996, 0.5: 0.999}
LATENCY = {
    "/": FAST,  # 0.4 % over 300 ms: within the latency SLO's 1 %
    "/database/": {1: 0.0, 2: 0.5, 3: 1.0},  # DB_DELAY 1-3 s, uniform
}
MEAN_SECONDS = {"/": 0.012, "/database/": 2.0}  # each route's mean latency, for the histogram's _sum
OTHER_MEAN_SECONDS = 0.004


@dataclass(frozen=True)
class Route:
    route: str
    status: str
    per_second: float  # requests per second at the daily mean

    def labels(self, instance: str) -> str:
        return f'job="app",instance="{instance}",method="GET",route="{self.route}",status="{self.status}"'


def load_mix() -> list[Route]:
    """The load generator's routes, their status and share: each @task(weight) and its `_get(path,
    expect=status, name=...)` in loadgen/locustfile.py, at locust.conf's users (one request/s each)."""
    users = float(re.search(r"^users\s*=\s*(\d+)", LOCUST_CONF.read_text(), re.M)[1])
    tasks = []
    for function in ast.walk(ast.parse(LOCUSTFILE.read_text())):
        if not isinstance(function, ast.FunctionDef):
            continue
        weights = [d.args[0].value for d in function.decorator_list if isinstance(d, ast.Call) and d.args]
        calls = [
            c for c in ast.walk(function) if isinstance(c, ast.Call) and getattr(c.func, "attr", "") == "_get"
        ]
        if weights and calls:
            keywords = {k.arg: k.value for k in calls[0].keywords}
            path = calls[0].args[0]
            name = keywords["name"].value if "name" in keywords else path.value
            route = UNMATCHED if name == UNMATCHED else name
            tasks.append((route, str(keywords["expect"].value), weights[0]))
    total = sum(weight for _, _, weight in tasks)
    return [Route(route, status, users * weight / total) for route, status, weight in tasks]


EDGES = [*LATENCY_BUCKETS, math.inf]


def _shares(route: str) -> list[float]:
    """The cumulative share at each of the app's bucket edges (+Inf last) for a route."""
    shape = LATENCY.get(route, {0.005: 0.7, 0.01: 0.95, 0.025: 1.0})
    shares, last = [], 0.0
    for edge in EDGES:
        last = shape.get(edge, 1.0 if edge > max(shape) else last)
        shares.append(last)
    return shares


@dataclass
class Traffic:
    """The cumulative counts of every series, stepped one scrape interval at a time."""

    mix: list[Route]
    instance: str
    step: int  # seconds between samples: the scrape interval
    at: int  # the time of the current counts, a multiple of `step`
    seed: int = 20
    requests: list[int] = field(default_factory=list)
    buckets: list[list[int]] = field(default_factory=list)
    sums: list[float] = field(default_factory=list)
    # The totals the recorded rates divide, RATE_WINDOW seconds back: (errors, all, slow "/", all "/").
    window: deque = field(default_factory=deque)

    def __post_init__(self):
        self.random = random.Random(self.seed)
        self.requests = [0] * len(self.mix)
        self.buckets = [[0] * len(EDGES) for _ in self.mix]
        self.sums = [0.0] * len(self.mix)
        self.shares = [_shares(r.route) for r in self.mix]
        self.means = [MEAN_SECONDS.get(r.route, OTHER_MEAN_SECONDS) for r in self.mix]
        self.slow_edge = EDGES.index(0.3)
        self.index = [r.route for r in self.mix].index("/")
        self.errors = [i for i, r in enumerate(self.mix) if r.status.startswith("5")]
        self.window = deque(maxlen=RATE_WINDOW // self.step + 1)
        self.labels = []  # each route's label sets: its counter's, each bucket's, its histogram's
        for route in self.mix:
            labels = route.labels(self.instance)
            histogram = labels.replace(f',status="{route.status}"', "")
            les = ["+Inf" if edge == math.inf else repr(float(edge)) for edge in EDGES]
            self.labels.append((labels, [f'{histogram},le="{le}"' for le in les], histogram))

    def advance(self) -> None:
        self.at += self.step
        cycle = 1 + 0.5 * math.sin(2 * math.pi * (self.at % DAY - 6 * 3600) / DAY)  # peak at noon + 6 h
        for index, route in enumerate(self.mix):
            count = int(route.per_second * self.step * cycle + self.random.random())
            self.requests[index] += count
            jitter = self.random.random()
            for edge, share in enumerate(self.shares[index]):
                self.buckets[index][edge] += min(count, int(count * share + jitter))
            self.sums[index] += count * self.means[index]
        self.window.append(self.totals())

    def totals(self) -> tuple[int, int, int, int]:
        root = self.buckets[self.index]
        errors = sum(self.requests[i] for i in self.errors)
        return errors, sum(self.requests), root[-1] - root[self.slow_edge], root[-1]

    def rates(self) -> tuple[float, ...] | None:
        """The 5-minute rates the SLO groups record now, as Prometheus computes them from samples one
        step apart: the increase over the window / its length. None until a window has passed."""
        if len(self.window) < self.window.maxlen:
            return None
        return tuple(
            (now - then) / RATE_WINDOW for now, then in zip(self.window[-1], self.window[0], strict=True)
        )

    def exposition(self) -> str:
        """The series as /metrics shows them now (no timestamps): what LiveMetrics serves."""
        return "".join(f"{name}{{{labels}}} {value}\n" for name, labels, value in self.samples())

    def samples(self) -> Iterator[tuple[str, str, float]]:
        for index, (labels, buckets, histogram) in enumerate(self.labels):
            yield "http_requests_total", labels, self.requests[index]
            for bucket, count in zip(buckets, self.buckets[index], strict=True):
                yield "http_request_duration_seconds_bucket", bucket, count
            yield "http_request_duration_seconds_count", histogram, self.buckets[index][-1]
            yield "http_request_duration_seconds_sum", histogram, round(self.sums[index], 3)


# What the SLO groups record from the series above, in the order of Traffic.rates().
RECORDED_RATES = (
    "job:slo_availability_errors:rate5m",
    "job:slo_availability_requests:rate5m",
    "job:slo_latency_index_slow:rate5m",
    "job:slo_latency_index_requests:rate5m",
)
FAMILIES = {
    "http_requests": "counter",
    "http_request_duration_seconds": "histogram",
    **{name: "gauge" for name in RECORDED_RATES},
}


def family(name: str) -> str:
    return next(
        f for f in FAMILIES if name == f or re.fullmatch(rf"{re.escape(f)}_(total|bucket|count|sum)", name)
    )


def write_day(traffic: Traffic, until: int, path: Path) -> int:
    """The samples from the current step up to `until` as OpenMetrics with timestamps, each series'
    samples in time order and each family's series together, as the format wants; the sample count."""
    series: dict[tuple[str, str], list[str]] = {}
    while traffic.at < until:
        traffic.advance()
        stamp = f" {traffic.at}\n"
        for name, labels, value in traffic.samples():
            series.setdefault((name, labels), []).append(f"{value}{stamp}")
        rates = traffic.rates()
        if rates is not None:
            for name, value in zip(RECORDED_RATES, rates, strict=True):
                series.setdefault((name, 'job="app"'), []).append(f"{value!r}{stamp}")
    count = 0
    with path.open("w") as out:
        for name_of_family, kind in FAMILIES.items():
            out.write(f"# TYPE {name_of_family} {kind}\n")
            for (name, labels), values in series.items():
                if family(name) == name_of_family:
                    prefix = f"{name}{{{labels}}} "
                    out.writelines(prefix + value for value in values)
                    count += len(values)
        out.write("# EOF\n")
    return count


def backfill(promtool: str, traffic: Traffic, until: int, blocks: Path, work: Path) -> int:
    """Write the history up to `until` into TSDB blocks in `blocks`, a day's file at a time; the
    sample count. Each day becomes one or two blocks (promtool cuts them at UTC midnight)."""
    samples = 0
    while traffic.at < until:
        day_file = work / "day.om"
        samples += write_day(traffic, min(until, traffic.at + DAY), day_file)
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h", "--quiet"]
            + [str(day_file), str(blocks)],
            check=True,
            capture_output=True,
        )
        day_file.unlink()
    return samples


class LiveMetrics(ThreadingHTTPServer):
    """/metrics on the loopback: the history's series (`traffic`, set once it is made: its instance
    label is this server's address), stepped on to the present at each scrape."""

    daemon_threads = True
    traffic: Traffic

    def __init__(self, clock):
        self.clock, self.lock = clock, threading.Lock()
        super().__init__((LOOPBACK, 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.server_address[1]}"

    def body(self) -> bytes:
        with self.lock:
            while self.traffic.at + self.traffic.step <= self.clock():
                self.traffic.advance()
            return self.traffic.exposition().encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.server.body()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass
