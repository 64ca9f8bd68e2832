"""What the two OTel scenarios share: their servers' size and traffic, and (otel-shared-instance-id's)
the same requests sent to a naive server and to the lab's, both pushing OTLP to one receiver (each
under its own service name), then what the receiver stores of each.

Each gunicorn worker's SDK pushes its cumulative totals. Under one `service.instance.id` the
workers' pushes land in one series, one writer after another: the series goes up and down (a
reset to Prometheus at every drop), and its latest value is whichever worker pushed last.
"""

from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from .. import traffic
from .running import (
    INDEX,
    Pushed,
    ScenarioError,
    gunicorn,
    ok,
    otlp_receiver,
    pushed_requests,
    ready,
    settled,
)

WORKERS = 4
CLIENTS = 8
RATE = 200  # requests/s
EXPORT_MS = 250  # each worker's export interval: several pushes while the traffic lasts


class Measured(NamedTuple):
    sent: int
    naive: Pushed
    lab: Pushed


def measure(short: bool, logs: Path, naive_config: str, naive_metrics: str, settings: dict) -> Measured:
    """Send the same requests to each server (both run with `settings`), read what the receiver stores."""
    sent = 400 if short else 2000
    common = {"GUNICORN_WORKERS": WORKERS, "OTEL_METRIC_EXPORT_INTERVAL": EXPORT_MS}
    with ExitStack() as stack:
        receiver = stack.enter_context(otlp_receiver(logs))
        push = {**common, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.endpoint}
        naive = stack.enter_context(
            gunicorn(
                "naive",
                logs,
                naive_config,
                metrics=naive_metrics,
                OTEL_SERVICE_NAME="naive",
                **push,
                **settings,
            )
        )
        lab = stack.enter_context(
            gunicorn("lab", logs, metrics="otel", OTEL_SERVICE_NAME="lab", **push, **settings)
        )
        ready(naive, lab)
        for server in naive, lab:
            answered = ok(traffic.send(server.url + INDEX.template, RATE, sent / RATE, threads=CLIENTS))
            if answered != sent:
                raise ScenarioError(f"{server.name}: {answered} of {sent} requests answered 200")
        # The lab's stored total stops moving once every worker has pushed its last requests. The naive
        # one never does: its idle workers go on pushing their totals into the one series, by turns.
        lab_stored = settled(lambda: pushed_requests(receiver, lab.name, INDEX.template), 1.5, timeout=60)
        naive_stored = pushed_requests(receiver, naive.name, INDEX.template)
    return Measured(sent, naive_stored, lab_stored)


def rows_of(measured: Measured, naive_setup: str, lab_setup: str):
    """The truth, the naive server's stored total and the lab's, with what else the receiver shows."""
    from .outcome import Row

    naive, lab = measured.naive, measured.lab
    return [
        Row("truth", "answered 200, counted by the client", measured.sent),
        Row(
            "naive",
            naive_setup,
            naive.total,
            f"{naive.instances} series for {WORKERS} workers; resets() counts {naive.resets:g} drops",
        ),
        Row(
            "lab",
            lab_setup,
            lab.total,
            f"{lab.instances} series, one per worker; resets() counts {lab.resets:g}",
        ),
    ]


def totals_chart(name: str, measured: Measured):
    """The requests sent and the totals the receiver stores, side by side."""
    from .outcome import Chart, Line, Panel

    bars = [("truth", measured.sent), ("naive", measured.naive.total), ("lab", measured.lab.total)]
    return Chart(
        f"{name}: requests sent and stored",
        "setup (1 truth, 2 naive, 3 lab)",
        [Panel("requests", [Line(role, role, [(i, value)]) for i, (role, value) in enumerate(bars, 1)])],
    )
