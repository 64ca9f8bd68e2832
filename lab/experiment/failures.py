"""`lab experiment --node-failures`: the same failure in the three pipelines, on the native HA stack.

While traffic runs to both app instances (`make native-ha`), one node of each tier is killed at the
same moment (SIGKILL, a machine that dies): Prometheus replica a, the StatsD node the proxy sends `/`'s
counter to, a carbon cache holding its series, and the OTLP receiver the dashboards read. The runner
restarts each after 2 s. Per view, the table says how many of the requests it counted against the
truth (what the clients were answered), how long after the last request it had them all, and the
longest stretch its series had no sample or point in (what a dashboard drew meanwhile: a gap, or not).

The runner's pids.json (lab/stack/native.py) names the processes to kill; each is checked to be the
running runner's child before any is signalled.
"""

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import requests

from app.signals import ROUTE, STATUS

from .. import traffic
from ..backends import BackendError, Graphite, Prometheus
from ..polling import Unsettled, settled
from ..queries import STATSD_OWN_SERIES, Pipelines, PushQueries, is_
from ..settings import LOOPBACK, ROOT, Ports
from ..stack import ha_push
from ..stack.ha import STORE_LAG_SECONDS, HaPorts, Topology
from ..stack.native import PIDS_FILE
from .run import RECEIVER_CACHE_SECONDS

DEFAULT_DATA_DIR = ROOT / ".lab" / "native-ha"
POLL_SECONDS = 0.5
RESTART_TIMEOUT = 30


class NodeFailureError(RuntimeError):
    """The run cannot be made or measured; the message says why."""


@dataclass(frozen=True)
class View:
    """Where a pipeline is read: its total of `/`'s 200s, and its samples' times per series."""

    name: str
    pipeline: str
    killed: str  # the killed nodes on its path, as the table names them
    step: float  # how often its series gets a sample or point when nothing fails
    total: Callable[[], float]
    stamps: Callable[[float, float], list[list[float]]]


@dataclass
class Row:
    view: str
    pipeline: str
    killed: str
    truth: int
    counted: float
    lost: float
    whole_after: float | None  # seconds after the last request until it had every request; None: never
    longest_gap: float  # seconds between two of its samples, in the traffic's span (all of it: none)
    step: float


def longest_gap(series: list[list[float]], start: float, end: float) -> float:
    """The longest time between two samples of one series, the span's ends included. With no sample
    inside the span (none stored, or a receiver that lost what it held and was sent nothing new before
    the end), a dashboard drew nothing at all: the gap is the whole span."""
    gaps = []
    for times in series:
        inside = sorted(t for t in times if start <= t <= end)
        if inside:
            edges = [start, *inside, end]
            gaps.append(max(b - a for a, b in zip(edges, edges[1:], strict=False)))
    return max(gaps, default=end - start)


def read_pids(data_dir: Path) -> dict:
    """The runner's pids.json: {"runner": its pid, "services": {name: pid}}."""
    path = data_dir / PIDS_FILE
    if not path.exists():
        raise NodeFailureError(
            f"no {path}: the node-failure run needs the native HA stack (`make native-ha`, data in "
            f"{DEFAULT_DATA_DIR.relative_to(ROOT)}; --data-dir names another)"
        )
    return json.loads(path.read_text())


def parent_of(pid: int) -> int | None:
    """The parent's pid of a running process (/proc), None when it is not running."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def check_killable(pids: dict, service: str) -> int:
    """The pid of `service`, once /proc says it runs and is the runner's child (a stale pids.json
    must not have another process killed); the reason as a NodeFailureError otherwise."""
    if service not in pids["services"]:
        raise NodeFailureError(f"{service} is not in the runner's {PIDS_FILE}: is it the HA topology?")
    pid, runner = pids["services"][service], pids["runner"]
    parent = parent_of(pid)
    if parent is None:
        raise NodeFailureError(f"{service} (pid {pid}) is not running: is the native HA stack up?")
    if parent != runner:
        raise NodeFailureError(
            f"pid {pid} is not the {service} the runner (pid {runner}) started; not killing it"
        )
    return pid


class NodeFailures:
    def __init__(self, data_dir: Path, ports: Ports, ha_ports: HaPorts, settings: dict):
        self.data_dir = data_dir.resolve()
        loop = f"http://{LOOPBACK}"
        self.apps = [f"{loop}:{ports.app}", f"{loop}:{ha_ports.app_2}"]
        self.prometheus = f"{loop}:{ports.prometheus}"
        self.store = f"{loop}:{ha_ports.long_term_store}"
        self.otel = f"{loop}:{ports.otlp_receiver}"
        self.otel_2 = f"{loop}:{ha_ports.otlp_receiver_2}"
        self.graphite = Graphite(f"{loop}:{ports.graphite}")
        self.statsd_admins = Topology(ports, ha_ports).statsd_admins
        self.settings = settings
        # `/`'s counter in carbon: what the push pipeline's view sums, and what the killed nodes held
        self.series = PushQueries(prefix=settings["STATSD_PREFIX"]).requests(
            "index", "GET", "200", per_second=False
        )

    def views(self, scrape: float, flush: float, export: float, since: float) -> list[View]:
        pipelines = Pipelines.of_stack(
            prefix=self.settings["STATSD_PREFIX"],
            scrape_seconds=scrape,
            export_seconds=export,
            service=self.settings["OTEL_SERVICE_NAME"],
        )
        pull, otel = pipelines.pull, pipelines.otel
        scraped = (is_(ROUTE, "/"), is_(STATUS, "200"))
        pushed = (is_(otel.names.route, "/"), is_(otel.names.status, "200"))
        # (the total, the series it sums)
        pull = (pull.total(*scraped), pull.select(pull.names.requests, *scraped))
        pushed = (otel.total(*pushed), otel.select(otel.names.requests, *pushed))
        graphite = self.graphite

        def promql(name, pipeline, killed, url, queries, step):
            query, selector = queries
            backend = Prometheus(url)
            stamps = lambda start, end: backend.sample_times(selector, start, end)  # noqa: E731
            return View(name, pipeline, killed, step, lambda: backend.value(query), stamps)

        def graphite_stamps(start: float, end: float) -> list[list[float]]:
            return [[t for t, _ in graphite.points(self.series, start, end)]]

        return [
            promql("Prometheus replica a", "pull", "prometheus-a", self.prometheus, pull, scrape),
            promql("long-term store", "pull", "prometheus-a", self.store, pull, scrape),
            View(
                "Graphite cluster (graphite-web 1)",
                "StatsD push",
                "a StatsD node, a carbon cache",
                flush,
                lambda: graphite.total(self.series, since),
                graphite_stamps,
            ),
            promql("OTLP receiver", "OTLP push", "otlp-receiver", self.otel, pushed, export),
            promql("OTLP receiver 2", "OTLP push", "otlp-receiver", self.otel_2, pushed, export),
        ]

    def targets(self) -> list[str]:
        """The services to kill: a node of each tier, the push's on `/`'s path."""
        key = self.series.removeprefix("stats_counts.")
        deadline = time.monotonic() + 10
        while not (holding := ha_push.nodes_holding(self.statsd_admins, key)):
            if time.monotonic() > deadline:
                raise NodeFailureError(f"no StatsD node holds {key}: does the app send to the proxy?")
            time.sleep(0.1)
        carbon = ha_push.cache_of(ha_push.relay_conf(self.data_dir), self.series)
        return ["prometheus-a", holding[0], carbon, "otlp-receiver"]

    def run(self, seconds: float, rate: float) -> dict:
        pids = read_pids(self.data_dir)
        scrape = Prometheus(self.prometheus).scrape_interval("app")
        started = time.time()
        since = started - 60
        flush = self.graphite.step(STATSD_OWN_SERIES, since) or 10.0
        export = self.settings["OTEL_METRIC_EXPORT_INTERVAL"] / 1000
        views = self.views(scrape, flush, export, since)
        slowest = max(scrape, flush, export)
        try:
            # Quiet for longer than the store may hold what an earlier run sent: read too soon, the
            # store's total before is short of that run's last requests, counted as this run's after.
            before = settled(
                lambda: [view.total() for view in views], max(slowest, STORE_LAG_SECONDS) + 1, tries=3
            )
        except Unsettled:
            raise NodeFailureError(
                "other traffic reaches / : stop the load generator (lab native --ha --no-loadgen, or Stop "
                "in its web UI), wait a few seconds and try again"
            ) from None
        answers: list[traffic.Answer] = []
        share = rate / len(self.apps)
        senders = [
            threading.Thread(target=lambda app=app: answers.extend(traffic.send(app + "/", share, seconds)))
            for app in self.apps
        ]
        start = time.time()
        for sender in senders:
            sender.start()
        time.sleep(seconds / 3)
        killed = {service: check_killable(pids, service) for service in self.targets()}  # all, then kill
        killed_at = time.time()
        for pid in killed.values():
            os.kill(pid, signal.SIGKILL)
        for sender in senders:
            sender.join()
        end = time.time()
        truth = sum(1 for answer in answers if answer.status == 200)
        expected = [b + truth for b in before]
        whole_after: list[float | None] = [None] * len(views)
        counted = list(before)
        # Each view is read until it has every request, or its total has held still for `quiet` since
        # it last moved or answered nothing (a view that lost requests never gets them; a restarted
        # receiver may answer its old total until the next export reaches it), or the deadline passes.
        # (A receiver that answered "no such series" keeps saying so for up to RECEIVER_CACHE_SECONDS.)
        quiet = 3 * slowest + 3 + RECEIVER_CACHE_SECONDS
        deadline = end + 2 * quiet + 30
        changed = [end] * len(views)
        done = [False] * len(views)
        while not all(done) and time.time() < deadline:
            for i, view in enumerate(views):
                if done[i]:
                    continue
                try:
                    now = view.total()
                except (requests.RequestException, BackendError):
                    changed[i] = time.time()  # the killed node, not back yet: not holding still
                    continue
                if now != counted[i]:
                    counted[i], changed[i] = now, time.time()
                if now == expected[i]:
                    whole_after[i], done[i] = time.time() - end, True
                elif time.time() - changed[i] > quiet and time.time() - end > quiet:
                    done[i] = True
            time.sleep(POLL_SECONDS)
        restarted = self._restarted(killed)
        rows = [
            Row(
                view.name,
                view.pipeline,
                view.killed,
                truth,
                counted[i] - before[i],
                truth - (counted[i] - before[i]),
                whole_after[i],
                longest_gap(view.stamps(start, end), start, end),
                view.step,
            )
            for i, view in enumerate(views)
        ]
        return {
            "rate": rate,
            "seconds": seconds,
            "start": start,
            "killed_at": killed_at - start,
            "end": end - start,
            "killed": killed,
            "restarted": restarted,
            "rows": [asdict(row) for row in rows],
        }

    def _restarted(self, killed: dict[str, int]) -> dict[str, int]:
        """The new pid of each killed service, once the runner has restarted them all."""
        deadline = time.monotonic() + RESTART_TIMEOUT
        while True:
            pids = read_pids(self.data_dir)["services"]
            now = {service: pids[service] for service in killed}
            if all(now[s] != pid for s, pid in killed.items()):
                return now
            if time.monotonic() > deadline:
                stuck = [s for s, pid in killed.items() if now[s] == pid]
                raise NodeFailureError(
                    f"the runner did not restart {', '.join(stuck)} in {RESTART_TIMEOUT} s"
                )
            time.sleep(POLL_SECONDS)


def table(result: dict) -> str:
    """The run as a Markdown table, one row per view."""

    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    killed = ", ".join(f"{service} (pid {pid})" for service, pid in result["killed"].items())
    lines = [
        f"# Node failures: one node of each tier killed at once, {result['killed_at']:.1f} s into "
        f"{result['seconds']:g} s of {result['rate']:g} requests/s",
        "",
        f"Killed (SIGKILL): {killed}; each restarted by the runner.",
        "",
        "| view | pipeline | killed on its path | truth | counted | lost | all counted after the last "
        "request | longest gap in its series (normal step) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['view']} | {row['pipeline']} | {row['killed']} | {row['truth']} | {row['counted']:g} "
            f"| {row['lost']:g} | {seconds(row['whole_after'])} | {seconds(row['longest_gap'])} "
            f"({row['step']:g} s) |"
        )
    return "\n".join(lines) + "\n"


def command(data_dir: Path, seconds: float, rate: float, out: Path | None, settings: dict) -> int:
    """Run, print the table, and write it with the run's figures (result.json) under `out`."""
    try:
        result = NodeFailures(data_dir, Ports.from_env(), HaPorts.from_env(), settings).run(seconds, rate)
    except NodeFailureError as error:
        print(f"lab experiment --node-failures: {error}", file=sys.stderr)
        return 1
    out = out or ROOT / "reports" / f"node-failures-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    text = table(result)
    (out / "node-failures.md").write_text(text)
    print(text)
    print(f"report: {out / 'node-failures.md'}")
    return 0
