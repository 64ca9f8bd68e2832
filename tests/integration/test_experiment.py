"""`lab experiment`, run as a person runs it, against the live stack: the report is
written, every pipeline's backend (pull, StatsD push, OTLP push) counts exactly what
was sent in each phase and shows each burst, and the injected error rate comes back
within the sampling error of the run; the page fires in the error burst and reaches the
webhook sink within the bound the stack's intervals give; `lab report` redraws the same
report from result.json alone."""

import json
import math
import os
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest

from lab.backends import AlertSink, Prometheus
from lab.experiment.alerts import ALERT_STEP_SECONDS
from lab.experiment.queries import Queries, otlp_receiver
from lab.polling import wait_for
from lab.settings import BACKENDS, PHASES

from ..helpers import ROOT
from .stack import PAGE, settled

RATE, SECONDS, ERROR_RATE, LATENCY_MS = 25, 4, 0.3, 100
# The native OTLP receiver (VictoriaMetrics) answers a query asked before the burst's first 5xx
# series existed from a cache it resets every 10 s: the burst and its 4-s rate window outlast that.
# A stack with longer intervals (compose's 5 s) gets a longer burst, for the page to fire in it.
ERRORS_SECONDS = 8
# How long Alertmanager may keep a group whose alerts all resolved (its dispatcher drops empty
# groups every 30 s): an alert that fires again in a group it still holds is sent at the group's
# next group_interval, not after group_wait.
EMPTY_GROUPS_KEPT_SECONDS = 30
# Beyond the intervals: the page's rule and the webhook's delivery on a loaded machine.
PAGE_MARGIN_SECONDS = 3


def page_seconds(stack) -> float:
    """How long after the burst's first errors the page fires at the latest, with a margin."""
    return stack.firing_seconds(PAGE) + PAGE_MARGIN_SECONDS


def page_statuses(stack) -> list[tuple[float, str]]:
    """(received_at, status) of each notification of the page the sink holds, oldest first."""
    return [
        (item["received_at"], alert["status"])
        for item in AlertSink(stack.alert_sink).notifications()
        for alert in item["alerts"]
        if alert["labels"].get("alertname") == PAGE
    ]


def page_at_rest(stack) -> bool:
    """Whether the page neither fires nor waits at Alertmanager to be sent resolved.

    An earlier test may have paged: until Alertmanager has sent the resolved
    notification, a new firing of the same alert is no news to it, and it sends none.
    """
    query = f'count(ALERTS{{alertstate="firing", alertname="{PAGE}"}})'
    statuses = page_statuses(stack)
    return Prometheus(stack.prometheus).value(query) == 0 and (not statuses or statuses[-1][1] != "firing")


@pytest.fixture(scope="module")
def report(stack, tmp_path_factory):
    # Earlier tests' traffic must have landed, or the experiment's quiet check refuses to start.
    queries = Queries(stack.pipelines)
    settled(
        lambda: (
            stack.promql(queries.pull.total),
            stack.graphite_sum(queries.graphite_total),
            stack.otel_promql(queries.otel.total),
        ),
        stack,
    )
    assert wait_for(lambda: page_at_rest(stack), bool, timeout=60, interval=1), (
        f"{PAGE} still fires, or its resolved notification has not reached the sink: {page_statuses(stack)}"
    )
    out = tmp_path_factory.mktemp("experiment")
    command = [sys.executable, "-m", "lab", "experiment", "--phase-seconds", str(SECONDS)]
    command += ["--errors-seconds", str(max(ERRORS_SECONDS, math.ceil(page_seconds(stack))))]
    command += ["--rate", str(RATE), "--error-rate", str(ERROR_RATE), "--latency-ms", str(LATENCY_MS)]
    command += ["--app", stack.app, "--prometheus", stack.prometheus, "--graphite", stack.graphite]
    command += ["--otel", stack.otel, "--out", str(out)]
    command += ["--alertmanager", stack.alertmanager, "--alert-sink", stack.alert_sink]
    # The experiment reads the app's settings (STATSD_PREFIX, the export interval) as the stack runs them.
    settings = {name: str(value) for name, value in stack.app_settings.items()}
    env = {**os.environ, **settings, "LAB_ADMIN_TOKEN": stack.admin_token}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"report: {out / 'report.md'}" in run.stdout
    assert "100%" in run.stderr  # the progress bar went the whole way
    return out, json.loads((out / "result.json").read_text())


def test_the_report_is_written(report):
    out, result = report
    text = (out / "report.md").read_text()
    headings = (
        "## Totals",
        "## Error ratio",
        "## Latency",
        "## Detection delay",
        "## Alerts",
        "## How to read it",
    )
    for heading in headings:
        assert heading in text
    assert "| phase | seconds | truth | Prometheus | Graphite | OTLP |" in text
    assert [phase["name"] for phase in result["phases"]] == list(PHASES)


def test_every_backend_counts_exactly_what_was_sent_in_each_phase(report):
    _, result = report
    for phase in result["phases"]:
        truth = phase["truth"]
        sent = RATE * result["scenario"]["seconds"][phase["name"]]
        assert truth["total"] == phase["sent"] == sent, phase["name"]
        for backend in BACKENDS:
            counted = phase[backend]
            assert (counted["total"], counted["errors"]) == (truth["total"], truth["errors"]), (
                f"{phase['name']}: {backend} says {counted}, the truth is {truth}"
            )


def test_the_error_burst_shows_the_injected_rate_and_only_there(report):
    _, result = report
    for phase in result["phases"]:
        ratio = phase["truth"]["error_ratio"]
        if phase["name"] == "error burst":
            # binomial sampling error of the burst's requests: 4 standard deviations
            tolerance = 4 * math.sqrt(ERROR_RATE * (1 - ERROR_RATE) / phase["truth"]["total"])
            assert abs(ratio - ERROR_RATE) <= tolerance, ratio
            assert {phase[backend]["error_ratio"] for backend in BACKENDS} == {ratio}
        else:
            assert ratio == 0, phase["name"]


def test_each_backend_shows_each_burst_and_its_latency(report):
    _, result = report
    bursts = {phase["name"]: phase for phase in result["phases"]}
    for name in ("error burst", "latency burst"):
        detected = bursts[name]["detected_after_seconds"]
        assert set(detected) == set(BACKENDS)
        assert all(seconds is not None and seconds > 0 for seconds in detected.values()), (name, detected)
    latency = bursts["latency burst"]["latency_ms"]
    assert latency["truth"]["p95"] >= LATENCY_MS
    for backend in ("prometheus", "otel"):
        assert latency[backend]["p95"] >= LATENCY_MS, backend  # at least the bucket edge at 100 ms
        assert 0 < bursts["baseline"]["latency_ms"][backend]["p95"] < LATENCY_MS, backend
    assert latency["graphite"]["p95 max of flushes"] >= LATENCY_MS


def page_bound(stack, earlier_page: float | None, burst_start: float) -> float:
    """Seconds from the burst's start until the page may reach the sink, from the stack's intervals.

    Until it fires (page_seconds), then Alertmanager's group_wait, or its
    group_interval if it may still hold the group of an earlier page
    (`earlier_page`: when the sink last got a notification of it, if ever).
    """
    group_wait, group_interval = stack.route_timings("page")
    held = earlier_page is not None and burst_start - earlier_page < EMPTY_GROUPS_KEPT_SECONDS
    return page_seconds(stack) + (group_interval if held else group_wait)


def test_the_page_fires_in_the_error_burst_and_reaches_the_sink_in_time(report, stack):
    _, result = report
    burst = {phase["name"]: phase for phase in result["phases"]}["error burst"]
    pages = [firing for firing in result["alerts"] if firing["alertname"] == PAGE]
    assert result["alerts_missing"] == {}
    assert len(pages) == 1, pages
    (page,) = pages
    assert not page["already_firing"], "an earlier test left the page firing"
    assert burst["start"] < page["fired_at"] < burst["end"], (burst["start"], page, burst["end"])
    earlier = [at for at, _ in page_statuses(stack) if at < result["started"]]
    bound = page_bound(stack, max(earlier, default=None), burst["start"])
    assert page["notified_at"] is not None, page
    assert page["fired_at"] - ALERT_STEP_SECONDS <= page["notified_at"] <= burst["start"] + bound, (
        page,
        burst["start"],
        bound,
    )


def test_the_latency_burst_keeps_the_workers_busy(report):
    # RATE x LATENCY_MS keeps most of the test app's 3 workers busy: saturation, which the report
    # points at where the client's p95 is above the backends', shows it through both PromQL backends.
    _, result = report
    bursts = {phase["name"]: phase for phase in result["phases"]}
    peaks = bursts["latency burst"]["saturation_peak"]
    assert set(peaks) == {"prometheus", "otel"}
    assert all(0 < peak <= 1 for peak in peaks.values()), peaks


def test_the_promql_backends_have_each_phase_s_percentiles(report):
    # On a fresh stack the baseline's buckets are born during the baseline: they count from 0 before it
    # (a phase with no value would be null here, never 0).
    _, result = report
    for phase in result["phases"]:
        for backend in ("prometheus", "otel"):
            for q, value in phase["latency_ms"][backend].items():
                assert isinstance(value, float) and value > 0, (phase["name"], backend, q, value)


def test_the_charts_are_images(report):
    out, _ = report
    for name in ("traffic", "errors", "latency"):
        height, width, _ = plt.imread(out / f"{name}.png").shape
        assert (width, height) == (1000, 450), name


def test_result_json_holds_what_the_charts_draw(report):
    _, result = report
    charts = result["charts"]
    assert {name: set(sources) for name, sources in charts.items()} == dict.fromkeys(
        ("traffic", "errors", "latency"), {"truth", *BACKENDS}
    )
    for name, sources in charts.items():
        for source, points in sources.items():
            assert points, (name, source)
            for seconds, value in points:
                assert 0 <= seconds <= result["finished"] - result["started"], (name, source, seconds)
                assert value is None or value >= 0, (name, source, value)
    # The truth per second: every answer, in the second it was sent.
    answered = sum(value for _, value in charts["traffic"]["truth"] if value is not None)
    assert answered == sum(phase["truth"]["total"] for phase in result["phases"])


def test_without_otel_the_experiment_finds_the_stack_s_receiver(stack):
    # Compose: Prometheus receives OTLP itself (stack.otel is Prometheus); natively it only scrapes.
    assert otlp_receiver(stack.prometheus, native_receiver=stack.otel) == stack.otel


def test_lab_report_redraws_the_same_report_from_result_json(report, tmp_path):
    out, _ = report
    redrawn = tmp_path / "redrawn"
    command = [sys.executable, "-m", "lab", "report", str(out / "result.json"), "--out", str(redrawn)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (0, f"report: {redrawn / 'report.md'}\n", "")
    assert (redrawn / "report.md").read_text() == (out / "report.md").read_text()
    for name in ("traffic", "errors", "latency"):
        assert (plt.imread(redrawn / f"{name}.png") == plt.imread(out / f"{name}.png")).all(), name
