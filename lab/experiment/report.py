"""Write an experiment's report from its result.json: report.md and three PNG charts.

A pure function of that file (result.py `save` writes it): `lab experiment`
writes the report from it, and `lab report PATH/result.json` redraws the same
report later with no backend running. The charts put the truth (what the
experiment sent and saw) next to what each backend shows over time; the tables
compare the phases. A value a backend did not have is null there, "n/a" here.

A result.json from before the OTLP push has no `otel` figures: its report shows
the two pipelines it measured, as it did then. One from before the experiment
recorded alerts has no `alerts`: its report says so where their times would be.
"""

import math
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no screen here, none needed
import matplotlib.pyplot as plt  # noqa: E402

from .result import CHARTS, backends

NAMES = {"prometheus": "Prometheus", "graphite": "Graphite", "otel": "OTLP"}
PIPELINES = {"prometheus": "Pull", "graphite": "StatsD push", "otel": "OTLP push"}
COLORS = {"truth": "black", "prometheus": "tab:orange", "graphite": "tab:blue", "otel": "tab:green"}


def write(result: dict, out: Path) -> Path:
    """Draw the charts and write report.md into `out` (created) from a result.json's content.

    Return report.md's path.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in CHARTS:
        draw(name, result["charts"][name], result, out / f"{name}.png")
    report = out / "report.md"
    report.write_text(markdown(result))
    return report


TITLES = {
    "traffic": ("Traffic to / (requests per second)", "req/s"),
    "errors": ("Errors: share of / answered 5xx", "%"),
    "latency": ("Latency of /: p95", "ms"),
}
LABELS = {
    "truth": "truth (client, per second)",
    "prometheus": "Prometheus (pull: rate / histogram_quantile)",
    "graphite": "Graphite (push: StatsD per flush)",
    "otel": "OTLP push (OpenTelemetry SDK: rate / histogram_quantile)",
}


def draw(name: str, sources: dict[str, list], result: dict, path: Path) -> None:
    """One chart: per source, [seconds since the start, value] points; a null value breaks the line."""
    title, unit = TITLES[name]
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    for phase in result["phases"]:
        shade(axes, phase, result["started"])
    for source, points in sources.items():
        if points:
            xs = [t for t, _ in points]
            ys = [math.nan if v is None else v for _, v in points]
            style = {"drawstyle": "steps-post"} if source == "graphite" else {}
            axes.plot(xs, ys, label=LABELS[source], color=COLORS[source], linewidth=1.5, **style)
    axes.set_title(title)
    axes.set_xlabel("seconds since the experiment started")
    axes.set_ylabel(unit)
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize="small", frameon=False)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def shade(axes, phase: dict, started: float) -> None:
    color = {"error burst": "tab:red", "latency burst": "tab:purple"}.get(phase["name"], "tab:green")
    axes.axvspan(phase["start"] - started, phase["end"] - started, color=color, alpha=0.08)
    axes.text(
        phase["start"] - started,
        1.0,
        f" {phase['name']}",
        transform=axes.get_xaxis_transform(),
        va="top",
        fontsize=8,
    )


def markdown(result: dict) -> str:
    scenario, measured = result["scenario"], backends(result)
    started = datetime.fromtimestamp(result["started"], UTC)
    lines = [
        f"# {' vs '.join(PIPELINES[backend] for backend in measured)}: experiment report",
        "",
        f"{started:%Y-%m-%d %H:%M:%S} UTC. {_where(result, measured)}",
        "",
        f"Traffic: GET / at {scenario['rate']:g} requests per second in each phase. Faults injected "
        f"through `/faults`: error burst `error_rate={scenario['error_rate']:g}`, latency burst "
        f"`latency_ms={scenario['latency_ms']:g}`. Between phases the traffic pauses until every backend "
        "holds the whole phase, so each phase is counted on its own.",
        "",
        "## Totals (requests to `/` answered)",
        "",
        _row("phase", "seconds", "truth", *(NAMES[backend] for backend in measured)),
        _rule(3 + len(measured)),
    ]
    for phase in result["phases"]:
        truth = phase["truth"]["total"]
        counted = [_versus(phase[backend]["total"], truth) for backend in measured]
        lines.append(_row(phase["name"], f"{phase['seconds']:.1f}", f"{truth:g}", *counted))
    lines += [
        "",
        "## Error ratio (5xx / all)",
        "",
        _row("phase", "injected", "truth", *(NAMES[backend] for backend in measured)),
        _rule(3 + len(measured)),
    ]
    for phase in result["phases"]:
        injected = scenario["error_rate"] if phase["name"] == "error burst" else 0
        ratios = [_percent(phase[source]["error_ratio"]) for source in ("truth", *measured)]
        lines.append(_row(phase["name"], _percent(injected), *ratios))
    sources = ("truth", *measured)
    headers = [_latency_header(source, q) for q in ("p95", "p99") for source in sources]
    lines += ["", "## Latency (ms)", "", _row("phase", *headers), _rule(1 + len(headers))]
    for phase in result["phases"]:
        latency = phase["latency_ms"]
        cells = [_latency_cell(source, latency[source], q) for q in ("p95", "p99") for source in sources]
        lines.append(_row(phase["name"], *cells))
    lines += queueing_notes(result["phases"], measured)
    lines += [
        "",
        "## Detection delay (seconds after the burst started)",
        "",
        _row("burst", *(NAMES[backend] for backend in measured), "shown when"),
        _rule(2 + len(measured)),
    ]
    for phase in bursts(result["phases"]):
        detected = phase["detected_after_seconds"]
        what = (
            f"the error ratio reaches {_percent(scenario['error_rate'] / 2)}"
            if phase["name"] == "error burst"
            else f"p95 reaches {scenario['latency_ms'] / 2:g} ms"
        )
        lines.append(_row(phase["name"], *(_seconds(detected[backend]) for backend in measured), what))
    lines += alert_lines(result)
    lines += ["", "## Over time", ""]
    lines += [f"![{name}]({name}.png)" for name in CHARTS]
    lines += ["", *EXPLANATION, *(OTEL_EXPLANATION if "otel" in measured else [])]
    lines += [*(ALERT_EXPLANATION if "alerts" in result else []), ""]
    return "\n".join(lines)


def bursts(phases: list[dict]) -> list[dict]:
    """The phases that injected a fault: those a backend had to detect."""
    return [phase for phase in phases if phase["detected_after_seconds"]]


# What the alert times lack when a service did not answer (result.json's alerts_missing).
WITHOUT = {
    "alert_sink": "No notification times: the webhook sink gave none",
    "alertmanager": "No reason why an alert reached no one: Alertmanager gave none",
}


def alert_lines(result: dict) -> list[str]:
    """When each alert fired and reached the sink, on the detection table's axis; or why not known."""
    lines = ["", "## Alerts (seconds after the burst started)", ""]
    if "alerts" not in result:
        return [*lines, "Not recorded: this result.json is from before `lab experiment` recorded alerts."]
    if result["alerts"]:
        header = ("alert", "severity", "burst", "fired", "reached the sink", "resolved", "resolved at sink")
        lines += [_row(*header), _rule(len(header))]
        lines += [_alert_row(firing, result) for firing in result["alerts"]]
    else:
        lines.append("No alert fired during the run.")
    missing = result["alerts_missing"]
    lines += [""] if missing else []
    lines += [f"{WITHOUT[service]} ({reason})." for service, reason in sorted(missing.items())]
    return lines


def _alert_row(firing: dict, result: dict) -> str:
    """A stretch an alert fired: its times after the start of the last burst started before it."""
    moment = firing["fired_at"] or result["started"]
    started = [phase for phase in bursts(result["phases"]) if phase["start"] <= moment]
    burst = started[-1] if started else bursts(result["phases"])[0]

    def after(epoch: float | None, none: str) -> str:
        return none if epoch is None else f"{epoch - burst['start']:.1f}"

    sink_answered = "alert_sink" not in result["alerts_missing"]
    if firing["already_firing"]:
        fired, reached = "already firing", "before the run"
    else:
        fired = after(firing["fired_at"], "")
        reason = firing["not_notified"]
        reached = after(firing["notified_at"], f"not notified: {reason}" if reason else "not known")
    resolved = after(firing["resolved_at"], "still firing")
    if firing["resolved_at"] is None:
        resolved_reached = "-"
    else:
        resolved_reached = after(firing["resolved_notified_at"], "none" if sink_answered else "not known")
    cells = (fired, reached, resolved, resolved_reached)
    return _row(firing["alertname"], firing["severity"], burst["name"], *cells)


def _where(result: dict, measured: list[str]) -> str:
    """The stack's URLs, and how often each backend gets new values."""
    urls = result["urls"]
    where = [
        f"App {urls['app']}",
        f"Prometheus {urls['prometheus']} (scrapes every {result['scrape_seconds']:g} s)",
        f"Graphite {urls['graphite']} (StatsD flushes every {result['flush_seconds']:g} s)",
    ]
    if "otel" in measured:
        where.append(
            f"OTLP receiver {urls['otel']} (each worker exports every {result['export_seconds']:g} s)"
        )
    if "alerts" in result:
        where.append(f"Alertmanager {urls['alertmanager']}, webhook sink {urls['alert_sink']}")
    return ", ".join(where) + "."


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _rule(columns: int) -> str:
    return _row(*["---"] * columns)


def _latency_header(source: str, q: str) -> str:
    name = "truth" if source == "truth" else NAMES[source]
    return f"{name} {q} (mean / max of flushes)" if source == "graphite" else f"{name} {q}"


def _latency_cell(source: str, latency: dict, q: str) -> str:
    """A source's `q` in ms; Graphite's as the mean and the max of its flushes' values."""
    if source == "graphite":
        return f"{_ms(latency[f'{q} mean of flushes'])} / {_ms(latency[f'{q} max of flushes'])}"
    return _ms(latency[q])


# The client's p95 this far above every backend's means a wait no server-side timer saw: more than
# the PromQL backends' interpolation within a bucket (a share) and the client's own HTTP overhead
# (a few ms) explain.
QUEUEING_FACTOR, QUEUEING_MS = 1.2, 50


def queueing_notes(phases: list[dict], measured: list[str]) -> list[str]:
    """Say so where the client waited far longer than any backend measured: the requests queued."""
    notes = []
    for phase in phases:
        latency = phase["latency_ms"]
        client = latency["truth"]["p95"]
        reported = {backend: _reported_p95(backend, latency[backend]) for backend in measured}
        highest = max((value for value in reported.values() if value is not None), default=None)
        if client is None or highest is None or not _far_above(client, highest):
            continue
        them = ", ".join(f"{NAMES[backend]} {_ms(value)} ms" for backend, value in reported.items())
        notes.append(
            f"In the {phase['name']} the client's p95 ({client:.0f} ms) is far above what the backends "
            f"report ({them}): requests waited in gunicorn's queue until a worker took them, and every "
            "server-side timer starts only then, so no backend's latency shows that wait. Saturation "
            f"does: {_saturation(phase)}. At 100 % every worker is busy and the next request queues "
            "(the dashboards' Saturation panel)."
        )
    return ["", *notes] if notes else []


def _far_above(client_ms: float, server_ms: float) -> bool:
    return client_ms >= max(QUEUEING_FACTOR * server_ms, server_ms + QUEUEING_MS)


def _reported_p95(backend: str, latency: dict) -> float | None:
    """The p95 a backend showed for the phase: StatsD's highest per-flush one (it has none of the phase)."""
    return latency["p95 max of flushes"] if backend == "graphite" else latency["p95"]


def _saturation(phase: dict) -> str:
    """The phase's highest saturation, as each PromQL backend saw it (an older result has none)."""
    signal = "requests in flight over capacity"
    peaks = {backend: peak for backend, peak in phase.get("saturation_peak", {}).items() if peak is not None}
    if not peaks:
        return signal
    return f"{signal} peaked at " + " and ".join(
        f"{_percent(peak)} ({NAMES[backend]})" for backend, peak in peaks.items()
    )


EXPLANATION = [
    "## How to read it",
    "",
    "- **Totals** must equal the truth in every backend: a difference is a lost UDP datagram or a StatsD",
    "  flush that carbon overwrote (two flushes in one whisper slot), or a counter reset on the pull side.",
    "- **Percentiles differ by design.** Prometheus computes p95 at query time from histogram buckets: exact",
    "  counts, but the value is interpolated inside a bucket (edges at 5, 10, 25, 50, 100, 250, 300, 500 ms",
    "  ...), so its error is bounded by the bucket's width. StatsD computes p95 from the raw timings of each",
    "  flush, exactly, but per flush: no mean or max of those values is the p95 of the phase, and flushes",
    "  of different hosts cannot be combined at all.",
    "- **Detection delay** is how long after the burst started each backend's dashboard query showed half of",
    "  the injected fault. Pull shows it after the next scrape, and a quantile over a rate window needs",
    "  enough slow requests in the window; push shows it after the next flush.",
    "- **Client and server latency** differ by the time a request waits for a free worker: the client's",
    "  clock runs from the moment it sends, every backend's timer from the moment a worker takes the",
    "  request. Only saturation (in flight / capacity) shows that wait from the server side. A scrape",
    "  needs a free worker too, so with one thread per worker pull's saturation never sees them all busy:",
    "  it tops out at (workers - 1) / workers, 75 % of 4.",
]
ALERT_EXPLANATION = [
    "- **Alerts** fire at the first evaluation of their rule that finds it true (Prometheus's `ALERTS`",
    "  series, read a second apart, so up to a second late): after the scrapes that bring the errors and",
    "  the evaluation of the recording rules the alert reads. A burn-rate alert needs the error ratio over",
    "  its threshold on a long and a short window, so the traffic before the burst delays it too; an",
    "  alert with a `for:` may fire only in a later phase (its times count from the last burst started",
    "  before it fired). Alertmanager holds a new group for `group_wait` before its first notification",
    "  (a group it still holds from an earlier firing sends at its next `group_interval`); an inhibited",
    "  or silenced alert reaches no one.",
]
OTEL_EXPLANATION = [
    "- **OTLP push** sends each worker's cumulative counters and histogram buckets (the same buckets as the",
    "  scrape): its totals are exact like pull's and its percentiles interpolate like Prometheus's. It",
    "  shows a burst after each worker's next export, like a scrape that the app starts itself. Each",
    "  worker exports from a thread of its own, so its saturation reaches 100 % where pull's cannot.",
]


def _versus(value: float, truth: float) -> str:
    return f"{value:g}" if value == truth else f"**{value:g}** ({value - truth:+g})"


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{100 * ratio:.1f} %"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _seconds(value: float | None) -> str:
    return "not shown" if value is None else f"{value:.1f}"
