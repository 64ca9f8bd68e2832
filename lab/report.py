"""Write an experiment's report from its result.json: report.md and three PNG charts.

A pure function of that file (lab/experiment.py `save` writes it): `lab experiment`
writes the report from it, and `lab report PATH/result.json` redraws the same
report later with no backend running. The charts put the truth (what the
experiment sent and saw) next to what each backend shows over time; the tables
compare the phases. A value a backend did not have is null there, "n/a" here.
"""

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no screen here, none needed
import matplotlib.pyplot as plt  # noqa: E402

CHARTS = ("traffic", "errors", "latency")
COLORS = {"truth": "black", "prometheus": "tab:orange", "graphite": "tab:blue"}
# What the report reads: a file without these keys was not written by `lab experiment` (or by an older one).
KEYS = ("scenario", "urls", "scrape_seconds", "flush_seconds", "started", "phases", "charts")
PHASE_KEYS = (
    "name",
    "start",
    "end",
    "seconds",
    "truth",
    "prometheus",
    "graphite",
    "latency_ms",
    "detected_after_seconds",
)


class ReportError(ValueError):
    """The file is not an experiment's result.json; the message names it and says why."""


def load(path: Path) -> dict:
    """The experiment result in `path`, checked to hold what the report reads."""
    try:
        result = json.loads(path.read_bytes())
    except OSError as error:
        raise ReportError(f"{path}: cannot read it: {error.strerror}") from None
    except ValueError as error:  # JSONDecodeError, or bytes that are no text at all
        raise ReportError(f"{path}: not JSON: {error}") from None
    missing = _missing(result)
    if missing:
        raise ReportError(f"{path}: not a `lab experiment` result.json: no {', '.join(missing)}")
    return result


def _missing(result) -> list[str]:
    """The keys the report reads that `result` does not have (inner ones once the outer ones are there)."""
    if not isinstance(result, dict):
        return list(KEYS)
    missing = [key for key in KEYS if key not in result]
    if missing:
        return missing
    phases = result["phases"] if isinstance(result["phases"], list) else [None]
    for i, phase in enumerate(phases):
        present = phase if isinstance(phase, dict) else {}
        missing += [f"phases[{i}].{key}" for key in PHASE_KEYS if key not in present]
    charts = result["charts"] if isinstance(result["charts"], dict) else {}
    return missing + [f"charts.{name}" for name in CHARTS if name not in charts]


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


# -- the charts -------------------------------------------------------------------------------------


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
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize="small", frameon=False)
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


# -- the text ---------------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    scenario, urls = result["scenario"], result["urls"]
    started = datetime.fromtimestamp(result["started"], UTC)
    lines = [
        "# Pull vs push: experiment report",
        "",
        f"{started:%Y-%m-%d %H:%M:%S} UTC. App {urls['app']}, Prometheus {urls['prometheus']} "
        f"(scrapes every {result['scrape_seconds']:g} s), Graphite {urls['graphite']} "
        f"(StatsD flushes every {result['flush_seconds']:g} s).",
        "",
        f"Traffic: GET / at {scenario['rate']:g} requests per second in each phase. Faults injected "
        f"through `/faults`: error burst `error_rate={scenario['error_rate']:g}`, latency burst "
        f"`latency_ms={scenario['latency_ms']:g}`. Between phases the traffic pauses until both backends "
        "hold the whole phase, so each phase is counted on its own.",
        "",
        "## Totals (requests to `/` answered)",
        "",
        "| phase | seconds | truth | Prometheus | Graphite |",
        "| --- | --- | --- | --- | --- |",
    ]
    for phase in result["phases"]:
        truth = phase["truth"]["total"]
        lines.append(
            f"| {phase['name']} | {phase['seconds']:.1f} | {truth:g} | "
            f"{_versus(phase['prometheus']['total'], truth)} | {_versus(phase['graphite']['total'], truth)} |"
        )
    lines += [
        "",
        "## Error ratio (5xx / all)",
        "",
        "| phase | injected | truth | Prometheus | Graphite |",
        "| --- | --- | --- | --- | --- |",
    ]
    for phase in result["phases"]:
        injected = scenario["error_rate"] if phase["name"] == "error burst" else 0
        ratios = [_percent(phase[source]["error_ratio"]) for source in ("truth", "prometheus", "graphite")]
        lines.append(f"| {phase['name']} | {_percent(injected)} | " + " | ".join(ratios) + " |")
    lines += [
        "",
        "## Latency (ms)",
        "",
        "| phase | truth p95 | Prometheus p95 | Graphite p95 (mean / max of flushes) "
        "| truth p99 | Prometheus p99 | Graphite p99 (mean / max of flushes) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in result["phases"]:
        truth, prometheus, graphite = (phase["latency_ms"][k] for k in ("truth", "prometheus", "graphite"))
        cells = []
        for q in ("p95", "p99"):
            cells += [
                _ms(truth[q]),
                _ms(prometheus[q]),
                f"{_ms(graphite[f'{q} mean of flushes'])} / {_ms(graphite[f'{q} max of flushes'])}",
            ]
        lines.append(f"| {phase['name']} | " + " | ".join(cells) + " |")
    lines += queueing_notes(result["phases"])
    lines += [
        "",
        "## Detection delay (seconds after the burst started)",
        "",
        "| burst | Prometheus | Graphite | shown when |",
        "| --- | --- | --- | --- |",
    ]
    for phase in result["phases"]:
        detected = phase["detected_after_seconds"]
        if detected:
            what = (
                f"the error ratio reaches {_percent(scenario['error_rate'] / 2)}"
                if phase["name"] == "error burst"
                else f"p95 reaches {scenario['latency_ms'] / 2:g} ms"
            )
            lines.append(
                f"| {phase['name']} | {_seconds(detected['prometheus'])} | "
                f"{_seconds(detected['graphite'])} | {what} |"
            )
    lines += ["", "## Over time", ""]
    lines += [f"![{name}]({name}.png)" for name in CHARTS]
    lines += ["", *EXPLANATION, ""]
    return "\n".join(lines)


def queueing_notes(phases: list[dict]) -> list[str]:
    """Say so where the client waited far longer than the app measured: the requests queued."""
    notes = []
    for phase in phases:
        name, latency = phase["name"], phase["latency_ms"]
        truth, prometheus = latency["truth"]["p95"], latency["prometheus"]["p95"]
        if truth is None or prometheus is None:
            continue
        if truth > 1.5 * prometheus and truth - prometheus > 50:
            notes.append(
                f"In the {name} the client's p95 ({truth:.0f} ms) is far above what the backends say "
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


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{100 * ratio:.1f} %"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _seconds(value: float | None) -> str:
    return "not shown" if value is None else f"{value:.1f}"
