"""`lab scenario ID`: the usual mistakes of pull and push, each measured against the truth.

Each scenario is one module here with `run(short, logs) -> Outcome`: it starts
what it needs on free loopback ports (real gunicorn, prometheus_client, the
StatsD daemon, carbon and graphite-web), sends known traffic, and compares
what the client knows (the truth) with a naive setup and with the lab's.
`short` is the tests' mode: less traffic, fewer rounds, the same ratios.
The naive setups that need a gunicorn config of their own are in `naive/`.

This module only names them: importing it imports nothing heavy (the CLI
lists them at once, and gunicorn imports the `naive` configs through it).
"""

from importlib import import_module
from pathlib import Path
from typing import NamedTuple


class Scenario(NamedTuple):
    module: str  # the module of this package that runs it
    mistake: str  # one line, for `lab scenario --list`


SCENARIOS = {
    "no-multiprocess": Scenario(
        "no_multiprocess", "prometheus_client's default registry under gunicorn with 4 workers"
    ),
    "gauge-overwrite": Scenario(
        "gauge_overwrite", "each worker sends its in-flight count as an absolute StatsD gauge"
    ),
    "percentile-averaging": Scenario(
        "percentile_averaging", "averaging per-flush percentiles (StatsD upper_99) over a window"
    ),
    "raw-path-labels": Scenario("raw_path_labels", "labelling requests by the raw path the client sent"),
    "recycling-cleanup": Scenario(
        "recycling_cleanup", "deleting dead workers' multiprocess files on exit, or keeping them all"
    ),
    "flush-vs-retention": Scenario(
        "flush_vs_retention", "StatsD flushing 6 times per slot of the finest whisper archive"
    ),
    "udp-loss": Scenario("udp_loss", "counting requests with push while the StatsD daemon is down"),
    "process-metrics-multiprocess": Scenario(
        "process_metrics_multiprocess",
        "process metrics under gunicorn from the process that answers the scrape",
    ),
    "otel-provider-before-fork": Scenario(
        "otel_provider_before_fork", "an OpenTelemetry MeterProvider made in gunicorn's master (preload_app)"
    ),
    "otel-shared-instance-id": Scenario(
        "otel_shared_instance_id", "every gunicorn worker pushing OTLP under one service.instance.id"
    ),
}


def run(scenario: str, short: bool, logs: Path):
    """Run one scenario (a key of SCENARIOS); return its Outcome (lab/scenarios/outcome.py)."""
    logs.mkdir(parents=True, exist_ok=True)
    return import_module(f"{__name__}.{SCENARIOS[scenario].module}").run(short, logs)
