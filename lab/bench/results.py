"""bench/results.md: every figure of a bench run, with what was measured and why that way."""

import os
import platform
import statistics
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from . import machine
from .machine import WRK_CONNECTIONS, cpu_plan
from .overhead import (
    ALONE_SECONDS,
    DOWN_VARIANTS,
    DUEL_SECONDS,
    IDLE_EXPORTS,
    OVERHEAD_VARIANTS,
    PEER_OF,
    PEER_VARIANTS,
    REFERENCE,
    STATSD_TARGETS,
    WARMUP_SECONDS,
    ExportCost,
    Overhead,
    Variant,
)
from .scrape import RECYCLE_CHECKPOINTS, RECYCLE_WORKERS, SCRAPES, RecycleCost, ScrapeCost


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
    export_ms = machine.EXPORT_INTERVAL_MS
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
        f"  {export_ms} ms as the lab runs: a minimal OTLP/HTTP sink in the bench's process that",
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
        f"{export_ms} ms: worker CPU above an idle `off` worker's, per export received.",
        "",
        "| pushing | exports received | worker CPU per export, ms | the same, ms per second |",
        "| --- | --- | --- | --- |",
    ]
    for name, cost in exports.items():
        if name == REFERENCE.name:
            continue
        per_export = (cost.cpu_ns - idle.cpu_ns) / 1e6 / max(cost.exports, 1)
        lines.append(f"| {name} | {cost.exports} | {per_export:.2f} | {per_export * 1000 / export_ms:.2f} |")
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
