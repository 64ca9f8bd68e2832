"""Section 1: what instrumentation costs a request under wrk (each variant head to head with `off`),
and the OTLP export alone."""

import random
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from app import signals
from app.config import pipelines

from ..peers import PEERS
from ..settings import UNRESOLVABLE, free_port
from ..stack.statsd_daemon import statsd_daemon
from . import machine
from .machine import (
    FAST_DB,
    MIX,
    BenchServer,
    Load,
    cpu_ns,
    cpu_plan,
    load,
    pin_process,
    rotated,
    send_mix,
    servers,
    unread_udp_socket,
)

ROUNDS = 5
WARMUP_SECONDS = 1
DUEL_SECONDS = 3
ALONE_SECONDS = 2


# Whose OTLP export is measured alone, in idle workers: the lab's push, the peer's, and `off` for the base.
EXPORT_SUBJECTS = {
    "off": {"LAB_METRICS": "off"},
    "otel": {"LAB_METRICS": "otel"},
    "opentelemetry-instrumentation-flask": {"LAB_METRICS": "off", "peer": "otel_flask"},
}
IDLE_EXPORTS = 6  # intervals an idle window lasts


@dataclass(frozen=True)
class Variant:
    """One server configuration of section 1."""

    name: str
    metrics: str  # LAB_METRICS
    statsd: str  # where its datagrams go: a key of STATSD_TARGETS
    peer: str | None = None  # a module of lab/peers, instrumenting the app instead of the lab
    otlp_receivers: int = 1  # receivers each worker exports to (section 6: the HA topology's two)

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


def check_exported(variant: Variant, server: BenchServer) -> None:
    """Fail if a server that pushes OTLP has no request in its receiver: exporting nothing looks cheap."""
    if "otel" not in pipelines(variant.pipeline):
        return
    for sink in server.receivers:
        if not sink.total(signals.OTEL_REQUEST_DURATION.name):
            raise RuntimeError(f"{variant.name}: no request reached its OTLP receiver ({sink.url})")


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
                pin_process(daemon.process.pid, app_cpu)
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
                    "otlp_receivers": variant.otlp_receivers,
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
                order = rotated([variant.name for variant in variants], number)
                for name in [REFERENCE.name, *order]:  # warm up: copy-on-write faults, first series
                    load([(by_name[name], charged[name])], WARMUP_SECONDS, load_cpu)
                reference = (by_name[REFERENCE.name], charged[REFERENCE.name])
                step = 1 if number % 2 else -1  # which wrk starts first alternates from round to round
                for name in order:
                    pair = [reference, (by_name[name], charged[name])][::step]
                    result.duels[name].append(tuple(load(pair, DUEL_SECONDS, load_cpu)[::step]))
                for name in rotated([REFERENCE.name, *order], number):
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


def export_cost(
    exports: int = IDLE_EXPORTS, subjects: dict[str, dict] = EXPORT_SUBJECTS
) -> dict[str, ExportCost]:
    """The OTLP export thread alone: idle workers' CPU over `exports` intervals, by EXPORT_SUBJECTS.

    Each worker first serves the mix, so it exports the series a live one
    would. Under load this CPU is inside the worker's figure of section 1
    (every thread counts); idle, the export is all that runs besides what
    `off`'s idle worker does too.
    """
    app_cpu, _ = cpu_plan()
    configs = [{"cpu": app_cpu, "GUNICORN_WORKERS": 1, **FAST_DB, **subject} for subject in subjects.values()]
    with servers(configs) as started:
        for server in started:
            send_mix(server, 10 * len(MIX))
        before = [(cpu_ns(server.workers()), received(server)) for server in started]
        time.sleep(exports * machine.EXPORT_INTERVAL_MS / 1000)
        return {
            name: ExportCost(cpu_ns(server.workers()) - used, received(server) - got)
            for name, server, (used, got) in zip(subjects, started, before, strict=True)
        }


def received(server) -> int:
    """The exports every receiver of `server` has got (a worker exporting to two: two per interval)."""
    return sum(sink.exports for sink in server.receivers)
