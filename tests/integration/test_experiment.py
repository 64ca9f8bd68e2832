"""`lab experiment`, run as a person runs it, against the live stack: the report is
written, both backends count exactly what was sent, and the injected error rate
comes back within the sampling error of the run."""

import json
import math
import os
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest

from lab.experiment import PHASES

from ..helpers import ROOT
from .stack import settled

RATE, SECONDS, ERROR_RATE, LATENCY_MS = 25, 4, 0.3, 100


@pytest.fixture(scope="module")
def report(stack, tmp_path_factory):
    # Earlier tests' traffic must have landed, or the experiment's quiet check refuses to start.
    settled(
        lambda: (
            stack.promql('sum(http_requests_total{route="/"})'),
            stack.graphite_sum("stats_counts.lab.app.http.requests.index.*.*"),
        ),
        stack,
    )
    out = tmp_path_factory.mktemp("experiment")
    command = [sys.executable, "-m", "lab", "experiment", "--phase-seconds", str(SECONDS)]
    command += ["--rate", str(RATE), "--error-rate", str(ERROR_RATE), "--latency-ms", str(LATENCY_MS)]
    command += ["--app", stack.app, "--prometheus", stack.prometheus, "--graphite", stack.graphite]
    command += ["--out", str(out)]
    env = {**os.environ, "LAB_ADMIN_TOKEN": stack.admin_token}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"report: {out / 'report.md'}" in run.stdout
    assert "100%" in run.stderr  # the progress bar went the whole way
    return out, json.loads((out / "result.json").read_text())


def test_the_report_is_written(report):
    out, result = report
    text = (out / "report.md").read_text()
    for heading in ("## Totals", "## Error ratio", "## Latency", "## Detection delay", "## How to read it"):
        assert heading in text
    assert [phase["name"] for phase in result["phases"]] == list(PHASES)


def test_both_backends_count_exactly_what_was_sent(report):
    _, result = report
    for phase in result["phases"]:
        truth = phase["truth"]
        assert truth["total"] == phase["sent"] == RATE * SECONDS, phase["name"]
        for backend in ("prometheus", "graphite"):
            counted = phase[backend]
            assert (counted["total"], counted["errors"]) == (truth["total"], truth["errors"]), (
                f"{phase['name']}: {backend} says {counted}, the truth is {truth}"
            )


def test_the_error_burst_shows_the_injected_rate_and_only_there(report):
    _, result = report
    for phase in result["phases"]:
        ratio = phase["truth"]["error_ratio"]
        if phase["name"] == "error burst":
            # binomial sampling error of RATE * SECONDS requests: 4 standard deviations
            tolerance = 4 * math.sqrt(ERROR_RATE * (1 - ERROR_RATE) / phase["truth"]["total"])
            assert abs(ratio - ERROR_RATE) <= tolerance, ratio
            assert phase["prometheus"]["error_ratio"] == phase["graphite"]["error_ratio"] == ratio
        else:
            assert ratio == 0, phase["name"]


def test_each_backend_shows_each_burst_and_its_latency(report):
    _, result = report
    bursts = {phase["name"]: phase for phase in result["phases"]}
    for name in ("error burst", "latency burst"):
        detected = bursts[name]["detected_after_seconds"]
        assert set(detected) == {"prometheus", "graphite"}
        assert all(seconds is not None and seconds > 0 for seconds in detected.values()), (name, detected)
    latency = bursts["latency burst"]["latency_ms"]
    assert latency["truth"]["p95"] >= LATENCY_MS
    assert latency["prometheus"]["p95"] >= LATENCY_MS  # at least the bucket edge at 100 ms
    assert latency["graphite"]["p95 max of flushes"] >= LATENCY_MS
    assert bursts["baseline"]["latency_ms"]["prometheus"]["p95"] < LATENCY_MS


def test_the_charts_are_images(report):
    out, _ = report
    for name in ("traffic", "errors", "latency"):
        height, width, _ = plt.imread(out / f"{name}.png").shape
        assert (width, height) == (1000, 450), name
