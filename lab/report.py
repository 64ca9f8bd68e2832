"""Write an experiment's report: report.md, result.json and three PNG charts.

The charts put the truth (what the experiment sent and saw) next to what each
backend shows over time; the tables compare the phases.
"""

import json
import math
import statistics
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no screen here, none needed
import matplotlib.pyplot as plt  # noqa: E402

from .experiment import Experiment, Phase, Result  # noqa: E402

CHARTS = ("traffic", "errors", "latency")
COLORS = {"truth": "black", "prometheus": "tab:orange", "graphite": "tab:blue"}


def write(result: Result, experiment: Experiment, out: Path) -> Path:
    """Write the report into `out` (created); return the path of report.md."""
    out.mkdir(parents=True, exist_ok=True)
    series = chart_series(result, experiment)
    for name in CHARTS:
        draw(name, series[name], result, out / f"{name}.png")
    (out / "result.json").write_text(json.dumps(_no_nan(summary(result)), indent=2) + "\n")
    report = out / "report.md"
    report.write_text(markdown(result))
    return report


def summary(result: Result) -> dict:
    """Every figure of the report, for programs (and tests)."""
    return {
        "scenario": asdict(result.scenario),
        "urls": result.urls,
        "scrape_seconds": result.scrape_seconds,
        "flush_seconds": result.flush_seconds,
        "started": result.started,
        "finished": result.finished,
        "phases": [
            {
                "name": phase.name,
                "faults": phase.faults,
                "seconds": phase.end - phase.start,
                "sent": len(phase.answers),
                "truth": {**asdict(phase.truth), "error_ratio": phase.truth.error_ratio},
                "prometheus": {**asdict(phase.prometheus), "error_ratio": phase.prometheus.error_ratio},
                "graphite": {**asdict(phase.graphite), "error_ratio": phase.graphite.error_ratio},
                "latency_ms": phase.latency,
                "detected_after_seconds": phase.detected,
            }
            for phase in result.phases
        ],
    }


def _no_nan(value):
    """NaN (no data) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


# -- the charts -------------------------------------------------------------------------------------


def chart_series(result: Result, experiment: Experiment) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """chart -> source -> (seconds since the start, value); a NaN breaks the line where no value exists."""
    start, end = result.started, result.finished
    prometheus, graphite, queries = experiment.prometheus, experiment.graphite, experiment.queries
    scrape, flush = result.scrape_seconds, result.flush_seconds

    def line(points, every: float):
        """Seconds since the start; a break wherever two points are further apart than their period."""
        out, last = [], None
        for t, v in points:
            if not start <= t <= end:
                continue
            if last is not None and t - last > 1.5 * every:
                out.append(((t + last) / 2 - start, math.nan))
            out.append((t - start, v))
            last = t
        return out

    answers = [a for phase in result.phases for a in phase.answers if a.status]
    per_second = dict(truth_by_second(answers))
    sent = [(second + 0.5, len(per_second.get(second, ()))) for second in range(int(start), int(end) + 1)]
    return {
        "traffic": {
            "truth": line(sent, 1),
            "prometheus": line(prometheus.series(queries.rate(), start, end, scrape), scrape),
            "graphite": line(graphite.points(queries.graphite_rate(), start, end), flush),
        },
        "errors": {
            "truth": line(
                ((s + 0.5, 100 * sum(a.status >= 500 for a in g) / len(g)) for s, g in per_second.items()), 1
            ),
            "prometheus": line(
                ((t, 100 * v) for t, v in prometheus.series(queries.error_ratio(), start, end, scrape)),
                scrape,
            ),
            "graphite": line(((t, 100 * v) for t, v in experiment.graphite_error_ratios(start, end)), flush),
        },
        "latency": {
            "truth": line(((s + 0.5, _p95([1000 * a.seconds for a in g])) for s, g in per_second.items()), 1),
            "prometheus": line(
                ((t, 1000 * v) for t, v in prometheus.series(queries.quantile(0.95), start, end, scrape)),
                scrape,
            ),
            "graphite": line(graphite.points(queries.graphite_upper(95), start, end), flush),
        },
    }


def truth_by_second(answers) -> list[tuple[int, list]]:
    """The answers grouped by the second they were sent in."""
    groups: dict[int, list] = {}
    for answer in answers:
        groups.setdefault(int(answer.sent_at), []).append(answer)
    return sorted(groups.items())


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94] if len(values) > 1 else values[0]


TITLES = {
    "traffic": ("Traffic to / (requests per second)", "req/s"),
    "errors": ("Errors: share of / answered 5xx", "%"),
    "latency": ("Latency of /: p95", "ms"),
}
LABELS = {
    "truth": "truth (client, per second)",
    "prometheus": "Prometheus (pull: rate / histogram_quantile)",
    "graphite": "Graphite (push: StatsD per flush)",
}


def draw(name: str, sources: dict[str, list[tuple[float, float]]], result: Result, path: Path) -> None:
    title, unit = TITLES[name]
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    for phase in result.phases:
        shade(axes, phase, result.started)
    for source, points in sources.items():
        if points:
            xs, ys = zip(*points, strict=True)
            style = {"drawstyle": "steps-post"} if source == "graphite" else {}
            axes.plot(xs, ys, label=LABELS[source], color=COLORS[source], linewidth=1.5, **style)
    axes.set_title(title)
    axes.set_xlabel("seconds since the experiment started")
    axes.set_ylabel(unit)
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize="small", frameon=False)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def shade(axes, phase: Phase, started: float) -> None:
    color = {"error burst": "tab:red", "latency burst": "tab:purple"}.get(phase.name, "tab:green")
    axes.axvspan(phase.start - started, phase.end - started, color=color, alpha=0.08)
    axes.text(
        phase.start - started,
        1.0,
        f" {phase.name}",
        transform=axes.get_xaxis_transform(),
        va="top",
        fontsize=8,
    )


# -- the text ---------------------------------------------------------------------------------------


def markdown(result: Result) -> str:
    scenario = result.scenario
    started = datetime.fromtimestamp(result.started, UTC)
    lines = [
        "# Pull vs push: experiment report",
        "",
        f"{started:%Y-%m-%d %H:%M:%S} UTC. App {result.urls['app']}, Prometheus {result.urls['prometheus']} "
        f"(scrapes every {result.scrape_seconds:g} s), Graphite {result.urls['graphite']} "
        f"(StatsD flushes every {result.flush_seconds:g} s).",
        "",
        f"Traffic: GET / at {scenario.rate:g} requests per second in each phase. Faults injected through "
        f"`/faults`: error burst `error_rate={scenario.error_rate:g}`, latency burst "
        f"`latency_ms={scenario.latency_ms:g}`. Between phases the traffic pauses until both backends hold "
        "the whole phase, so each phase is counted on its own.",
        "",
        "## Totals (requests to `/` answered)",
        "",
        "| phase | seconds | truth | Prometheus | Graphite |",
        "| --- | --- | --- | --- | --- |",
    ]
    for phase in result.phases:
        lines.append(
            f"| {phase.name} | {phase.end - phase.start:.1f} | {phase.truth.total:g} | "
            f"{_versus(phase.prometheus.total, phase.truth.total)} | "
            f"{_versus(phase.graphite.total, phase.truth.total)} |"
        )
    lines += [
        "",
        "## Error ratio (5xx / all)",
        "",
        "| phase | injected | truth | Prometheus | Graphite |",
        "| --- | --- | --- | --- | --- |",
    ]
    for phase in result.phases:
        injected = scenario.error_rate if phase.name == "error burst" else 0
        lines.append(
            f"| {phase.name} | {_percent(injected)} | {_percent(phase.truth.error_ratio)} | "
            f"{_percent(phase.prometheus.error_ratio)} | {_percent(phase.graphite.error_ratio)} |"
        )
    lines += [
        "",
        "## Latency (ms)",
        "",
        "| phase | truth p95 | Prometheus p95 | Graphite p95 (mean / max of flushes) "
        "| truth p99 | Prometheus p99 | Graphite p99 (mean / max of flushes) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in result.phases:
        truth, prometheus, graphite = (phase.latency[k] for k in ("truth", "prometheus", "graphite"))
        cells = []
        for q in ("p95", "p99"):
            cells += [
                _ms(truth[q]),
                _ms(prometheus[q]),
                f"{_ms(graphite[f'{q} mean of flushes'])} / {_ms(graphite[f'{q} max of flushes'])}",
            ]
        lines.append(f"| {phase.name} | " + " | ".join(cells) + " |")
    lines += queueing_notes(result.phases)
    lines += [
        "",
        "## Detection delay (seconds after the burst started)",
        "",
        "| burst | Prometheus | Graphite | shown when |",
        "| --- | --- | --- | --- |",
    ]
    for phase in result.phases:
        if phase.detected:
            what = (
                f"the error ratio reaches {_percent(scenario.error_rate / 2)}"
                if phase.name == "error burst"
                else f"p95 reaches {scenario.latency_ms / 2:g} ms"
            )
            lines.append(
                f"| {phase.name} | {_seconds(phase.detected['prometheus'])} | "
                f"{_seconds(phase.detected['graphite'])} | {what} |"
            )
    lines += ["", "## Over time", ""]
    lines += [f"![{name}]({name}.png)" for name in CHARTS]
    lines += ["", *EXPLANATION, ""]
    return "\n".join(lines)


def queueing_notes(phases: list[Phase]) -> list[str]:
    """Say so where the client waited far longer than the app measured: the requests queued."""
    notes = []
    for phase in phases:
        truth, prometheus = phase.latency["truth"]["p95"], phase.latency["prometheus"]["p95"]
        if truth > 1.5 * prometheus and truth - prometheus > 50:
            notes.append(
                f"In the {phase.name} the client's p95 ({truth:.0f} ms) is far above what the backends say "
                f"({prometheus:.0f} ms): requests waited in gunicorn's queue for a busy worker (saturation), "
                "and the app's timers start only when a worker takes the request. Only the saturation panel "
                "(in flight / capacity at 100 %) shows it from the server side."
            )
    return ["", *notes] if notes else []


EXPLANATION = [
    "## How to read it",
    "",
    "- **Totals** must equal the truth in both backends: a difference is a lost UDP datagram or a StatsD",
    "  flush that carbon overwrote (two flushes in one whisper slot), or a counter reset on the pull side.",
    "- **Percentiles differ by design.** Prometheus computes p95 at query time from histogram buckets: exact",
    "  counts, but the value is interpolated inside a bucket (edges at 5, 10, 25, 50, 100, 250, 300, 500 ms",
    "  ...), so its error is bounded by the bucket's width. StatsD computes p95 from the raw timings of each",
    "  flush, exactly, but per flush: no mean or max of those values is the p95 of the phase, and flushes",
    "  of different hosts cannot be combined at all.",
    "- **Detection delay** is how long after the burst started each backend's dashboard query showed half of",
    "  the injected fault. Pull shows it after the next scrape, and a quantile over a rate window needs",
    "  enough slow requests in the window; push shows it after the next flush.",
]


def _versus(value: float, truth: float) -> str:
    return f"{value:g}" if value == truth else f"**{value:g}** ({value - truth:+g})"


def _percent(ratio: float) -> str:
    return "n/a" if math.isnan(ratio) else f"{100 * ratio:.1f} %"


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def _seconds(value: float | None) -> str:
    return "not shown" if value is None else f"{value:.1f}"
