"""Before it starts, the experiment waits for the totals of `/` to hold still: traffic that
just ended may still be landing (the OTLP export and receiver lag most); traffic that goes
on is refused."""

import pytest

from app.config import DEFAULTS
from lab.experiment import run
from lab.experiment.result import Counts, Plan
from lab.experiment.run import Experiment, ExperimentError
from lab.settings import BACKENDS


def an_experiment(alert_sink: str = "http://s") -> Experiment:
    """An Experiment whose URLs lead nowhere: a test gives it what it reads."""
    return Experiment(
        Plan({}),
        "http://127.0.0.1:1",
        "http://p",
        "http://g",
        "http://o",
        "",
        DEFAULTS,
        alertmanager="http://a",
        alert_sink=alert_sink,
    )


def readings(*totals: int):
    """An Experiment whose totals read `totals`, one per look, the same in every backend."""
    run = an_experiment()
    run.scrape, run.flush = 1.0, 1.0
    looks = iter(totals)

    def cumulative():
        total = next(looks)
        return {backend: Counts(total, 0) for backend in BACKENDS}

    run._cumulative = cumulative
    return run


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(run.time, "sleep", lambda seconds: None)


def test_totals_that_settle_after_traffic_just_ended_start_the_experiment():
    mark = readings(226, 227, 227)._check_quiet()
    assert mark.counted["otel"].total == 227


def test_totals_that_keep_moving_are_other_traffic():
    with pytest.raises(ExperimentError, match="other traffic reaches / .*otel 100 -> 103"):
        readings(100, 101, 102, 103)._check_quiet()
