"""`lab experiment` and `lab report` as the CLI calls them: a run against a stack, a report redrawn."""

import sys
from datetime import datetime
from pathlib import Path

import requests

from app import config as app_config
from app.config import ConfigError

from ..backends import BackendError, not_answering
from ..fault_control import FaultControlError
from ..settings import PHASES, ROOT
from . import queries, report, result, run


def experiment(
    plan: result.Plan,
    urls: dict[str, str | None],
    environment: dict[str, str],
    token: str,
    native_otlp_receiver: str,
    out: Path | None,
) -> int:
    """Run `plan` against the stack at `urls` (app, prometheus, graphite, otel, alertmanager, alert_sink;
    otel None: found from Prometheus), write result.json and the report drawn from it alone.

    `environment`: the app's settings as the stack runs them (the same .env and environment)."""
    try:
        otel = urls["otel"] or queries.otlp_receiver(urls["prometheus"], native_otlp_receiver)
        measured = run.Experiment(
            plan,
            urls["app"],
            urls["prometheus"],
            urls["graphite"],
            otel,
            token,
            app_config.from_env(environment),
            alertmanager=urls["alertmanager"],
            alert_sink=urls["alert_sink"],
        ).run()
        out = out or ROOT / "reports" / f"experiment-{datetime.now():%Y%m%d-%H%M%S}"
        # Drawn from the file, as `lab report` draws it: the report holds nothing result.json does not.
        print(f"report: {report.write(result.load(result.save(measured, out)), out)}")
        return 0
    except (FaultControlError, run.ExperimentError, BackendError, ConfigError) as error:
        print(f"lab experiment: {error}", file=sys.stderr)
    except requests.ConnectionError as error:
        print(not_answering("experiment", error.request.url), file=sys.stderr)
    return 1


def plan(seconds: float, phases: dict[str, float | None], rate: float, error_rate: float, latency_ms: float):
    """The run's plan: each phase its own length, or `seconds`."""
    return result.Plan({name: phases.get(name) or seconds for name in PHASES}, rate, error_rate, latency_ms)


def redraw(path: Path, out: Path) -> int:
    """`lab report`: the report of a result.json, offline."""
    try:
        loaded = result.load(path)
    except result.ReportError as error:
        print(f"lab report: {error}", file=sys.stderr)
        return 2
    print(f"report: {report.write(loaded, out)}")
    return 0
