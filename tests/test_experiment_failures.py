"""`lab experiment --node-failures` (lab/experiment/failures.py), its parts that start nothing: the gaps,
the table, and the refusals to kill what the runner did not start. The run itself is in
tests/integration/test_ha.py, against the native HA stack."""

import os
import subprocess
import sys

import pytest

from lab.experiment import failures
from lab.experiment.failures import NodeFailureError


def test_the_longest_gap_counts_the_span_s_ends_and_each_series_apart():
    # a sample every second, but none from 3 to 7: a 4 s gap
    assert failures.longest_gap([[0.5, 1.5, 2.5, 3.0, 7.0, 8.0]], 0, 9) == 4.0
    # the span's ends count: a series that starts late has a gap from the start
    assert failures.longest_gap([[6.0, 7.0, 8.0]], 0, 9) == 6.0
    # per series: two interleaved series are not one denser series
    assert failures.longest_gap([[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]], 0, 9) == 2.0
    # nothing inside the span, or no series at all: a dashboard drew nothing, the whole span is a gap
    assert failures.longest_gap([[], [20.0]], 0, 9) == 9.0
    assert failures.longest_gap([], 0, 9) == 9.0


def a_result() -> dict:
    row = {"pipeline": "pull", "killed": "prometheus-a", "truth": 180, "step": 1.0}
    return {
        "rate": 20,
        "seconds": 9,
        "killed_at": 3.04,
        "killed": {"prometheus-a": 101, "otlp-receiver": 102},
        "rows": [
            {**row, "view": "long-term store", "counted": 180, "lost": 0, "whole_after": 1.26}
            | {"longest_gap": 1.0},
            {**row, "view": "Prometheus replica a", "counted": 171, "lost": 9, "whole_after": None}
            | {"longest_gap": 4.5},
        ],
    }


def test_the_table_has_a_row_per_view_and_says_never_for_a_view_short_of_the_truth():
    text = failures.table(a_result())
    assert text.startswith("# Node failures: one node of each tier killed at once, 3.0 s into 9 s of 20 ")
    assert "Killed (SIGKILL): prometheus-a (pid 101), otlp-receiver (pid 102)" in text
    assert "| long-term store | pull | prometheus-a | 180 | 180 | 0 | 1.3 s | 1.0 s (1 s) |" in text
    assert "| Prometheus replica a | pull | prometheus-a | 180 | 171 | 9 | never | 4.5 s (1 s) |" in text


def test_no_runner_pids_file_is_a_message_naming_make_native_ha(tmp_path):
    with pytest.raises(NodeFailureError, match="make native-ha"):
        failures.read_pids(tmp_path)


def test_a_pid_that_is_not_the_runner_s_child_is_not_killed():
    # this test's own process, named in pids.json as a service, under a runner it is not a child of
    pids = {"runner": os.getpid(), "services": {"prometheus-a": os.getpid()}}
    message = f"pid {os.getpid()} is not the prometheus-a the runner \\(pid {os.getpid()}\\) started"
    with pytest.raises(NodeFailureError, match=message):
        failures.check_killable(pids, "prometheus-a")
    with pytest.raises(NodeFailureError, match="statsd-9 is not in the runner's pids.json"):
        failures.check_killable(pids, "statsd-9")
    # the runner's own child passes
    child = {"runner": os.getppid(), "services": {"x": os.getpid()}}
    assert failures.check_killable(child, "x") == os.getpid()


def test_a_pid_that_is_gone_is_named():
    gone = 2**22 + 1  # above the kernel's largest pid (pid_max is at most 2^22)
    pids = {"runner": os.getpid(), "services": {"statsd-1": gone}}
    with pytest.raises(NodeFailureError, match=f"statsd-1 \\(pid {gone}\\) is not running"):
        failures.check_killable(pids, "statsd-1")


@pytest.mark.processes
def test_the_cli_says_what_is_missing_and_exits_1(tmp_path):
    command = [sys.executable, "-m", "lab", "experiment", "--node-failures", "--data-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"lab experiment --node-failures: no {tmp_path / 'pids.json'}")
    assert not list(tmp_path.iterdir())  # nothing written
