"""An experiment's plan, its phases and its result, and result.json written (`save`) and read (`load`).

result.json holds every figure of the report: `lab report` redraws the report from
it alone, with no backend running. A value a backend did not have is NaN in the
Result and null in the file, never 0. The reader checks what the report reads, so a
file from an older `lab experiment` (no OTLP figures, no alerts) still loads.
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import traffic
from ..settings import BACKENDS, ROUTE_UNDER_TEST


@dataclass(frozen=True)
class Plan:
    """What a run does: each phase's length, its rate of requests to `/`, the bursts' faults.

    result.json keeps it under `scenario`.
    """

    seconds: dict[str, float]  # phase -> duration
    rate: float = 20.0  # requests per second to /
    error_rate: float = 0.3  # injected during the error burst
    latency_ms: float = 200.0  # injected during the latency burst

    def faults(self, phase: str) -> dict | None:
        if phase == "error burst":
            return {"routes": {ROUTE_UNDER_TEST: {"error_rate": self.error_rate}}}
        if phase == "latency burst":
            return {"routes": {ROUTE_UNDER_TEST: {"latency_ms": self.latency_ms}}}
        return None


@dataclass
class Counts:
    total: float
    errors: float

    @property
    def error_ratio(self) -> float:
        return self.errors / self.total if self.total else math.nan

    def plus(self, other: "Counts") -> "Counts":
        return Counts(self.total + other.total, self.errors + other.errors)

    def minus(self, other: "Counts") -> "Counts":
        return Counts(self.total - other.total, self.errors - other.errors)


@dataclass(frozen=True)
class Mark:
    """Where each backend's totals stood while nothing was in flight: a phase counts from here."""

    at: float
    counted: dict[str, Counts]  # backend -> its totals


@dataclass
class Phase:
    name: str
    faults: dict | None
    start: float
    end: float
    settled: float  # when every backend held the phase (or stopped changing)
    answers: list[traffic.Answer]
    truth: Counts
    counted: dict[str, Counts]  # backend -> what it counted in the phase
    latency: dict[str, dict[str, float]]  # source -> {"p95": ms, ...}
    detected: dict[str, float | None]  # backend -> seconds after the start it showed the burst
    saturation_peak: dict[str, float]  # PromQL backend -> the highest in flight / capacity it showed


@dataclass
class Firing:
    """One stretch of the run an alert fired (epoch seconds), and what the webhook sink received of it."""

    alertname: str
    severity: str
    already_firing: bool  # since before the run started: no `fired_at`, and its page came before the run
    fired_at: float | None
    resolved_at: float | None  # None: still firing when the run ended
    notified_at: float | None = None  # when its first firing notification reached the sink
    resolved_notified_at: float | None = None  # when its resolved one did, if during the run
    not_notified: str | None = None  # why it fired in the run and reached no one, as Alertmanager says


@dataclass
class Result:
    scenario: Plan
    urls: dict[str, str]
    scrape_seconds: float
    flush_seconds: float
    export_seconds: float
    started: float
    finished: float
    phases: list[Phase]
    # chart -> source -> (seconds since the start, value); a NaN breaks the line where no value exists
    charts: dict[str, dict[str, list[tuple[float, float]]]]
    alerts: list[Firing]
    # "alert_sink" / "alertmanager" -> why the alert times lack what it would have said
    alerts_missing: dict[str, str]


def summary(result: Result) -> dict:
    """Every figure of the report, as result.json holds it (but NaN where it has null)."""
    return {
        "scenario": asdict(result.scenario),
        "urls": result.urls,
        "scrape_seconds": result.scrape_seconds,
        "flush_seconds": result.flush_seconds,
        "export_seconds": result.export_seconds,
        "started": result.started,
        "finished": result.finished,
        "phases": [
            {
                "name": phase.name,
                "faults": phase.faults,
                "start": phase.start,
                "end": phase.end,
                "seconds": phase.end - phase.start,
                "sent": len(phase.answers),
                "truth": _counts(phase.truth),
                **{backend: _counts(counts) for backend, counts in phase.counted.items()},
                "latency_ms": phase.latency,
                "detected_after_seconds": phase.detected,
                "saturation_peak": phase.saturation_peak,
            }
            for phase in result.phases
        ],
        "charts": result.charts,
        "alerts": [asdict(firing) for firing in result.alerts],
        "alerts_missing": result.alerts_missing,
    }


def _counts(counts: Counts) -> dict:
    return {**asdict(counts), "error_ratio": counts.error_ratio}


def save(result: Result, out: Path) -> Path:
    """Write `out`/result.json (`out` created); return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    path.write_text(json.dumps(_no_nan(summary(result)), indent=2) + "\n")
    return path


def _no_nan(value):
    """NaN (no value) as null: JSON has no NaN. Tuples (chart points) become lists, as JSON has them."""
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


# -- result.json read back: what the report needs of it -----------------------------------------

CHARTS = ("traffic", "errors", "latency")


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
# What a result with the OTLP push's figures (`otel` in every phase) also has.
OTEL_KEYS = ("export_seconds",)
# What a result with alert times (`alerts`) also has, and each of them.
ALERTS_KEYS, ALERT_URLS = ("alerts_missing",), ("alertmanager", "alert_sink")
FIRING_KEYS = (
    "alertname",
    "severity",
    "already_firing",
    "fired_at",
    "resolved_at",
    "notified_at",
    "resolved_notified_at",
    "not_notified",
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
    missing += _missing_in(result["phases"], "phases", PHASE_KEYS)
    charts = result["charts"] if isinstance(result["charts"], dict) else {}
    missing += [f"charts.{name}" for name in CHARTS if name not in charts]
    if not missing and "otel" in backends(result):
        missing += [key for key in OTEL_KEYS if key not in result]
        missing += [] if "otel" in result["urls"] else ["urls.otel"]
    if not missing and "alerts" in result:
        missing += [key for key in ALERTS_KEYS if key not in result]
        missing += [f"urls.{url}" for url in ALERT_URLS if url not in result["urls"]]
        missing += _missing_in(result["alerts"], "alerts", FIRING_KEYS)
    return missing


def _missing_in(items, name: str, keys: tuple[str, ...]) -> list[str]:
    """`name[i].key` for each of `keys` the i-th of `items` lacks (items that are no list: one empty)."""
    present = [item if isinstance(item, dict) else {} for item in items] if isinstance(items, list) else [{}]
    return [f"{name}[{i}].{key}" for i, item in enumerate(present) for key in keys if key not in item]


def backends(result: dict) -> list[str]:
    """The pipelines the result measured, in BACKENDS order: every one in every phase."""
    return [backend for backend in BACKENDS if all(backend in phase for phase in result["phases"])]
