"""Section 6 of `make bench` (lab/bench/beyond.py): the long-term store's day, a second scraper, and
bench/results.md's sections replaced one at a time."""

import pytest

from lab.bench import beyond, run
from lab.bench.history import load_mix
from lab.settings import prometheus_scrape_seconds

STEP = int(prometheus_scrape_seconds())


def test_the_day_is_the_history_as_json_lines_shifted_for_replica_b():
    until = 1_700_000_000 // STEP * STEP
    a, samples = beyond.day_series(STEP, until, 0, span=60)
    b, _ = beyond.day_series(STEP, until, 2.3, span=60)
    steps = 60 // STEP
    assert samples == steps * len(a) and all(len(line["values"]) == steps for line in a)
    (index,) = [
        line["metric"]
        for line in a
        if line["metric"]["__name__"] == "http_requests_total"
        and line["metric"]["route"] == "/"
        and line["metric"]["method"] == "GET"
    ]
    assert index == {
        "__name__": "http_requests_total",
        "job": "app",
        "instance": "127.0.0.1:8000",
        "method": "GET",
        "route": "/",
        "status": "200",
    }
    assert a[0]["timestamps"] == [(until - 60 + STEP * (i + 1)) * 1000 for i in range(steps)]
    assert [t - 2300 for t in b[0]["timestamps"]] == a[0]["timestamps"]
    assert [line["values"] for line in b] == [line["values"] for line in a]  # the same samples
    assert {line["metric"]["route"] for line in a if "route" in line["metric"]} == {
        r.route for r in load_mix()
    }


def test_a_section_replaced_keeps_the_others_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results.md")
    run.replace_section("## 6. Beyond one machine", "## 6. Beyond one machine\n\nfirst\n")
    (tmp_path / "results.md").write_text(
        "# Benchmark results\n\nintro\n\n## 1. One\n\none\n\n## 6. Beyond one machine\n\nold\n"
    )
    run.replace_section("## 5. Rules after a month", "## 5. Rules after a month\n\nfive\n")
    run.replace_section("## 6. Beyond one machine", "## 6. Beyond one machine\n\nnew\n")
    assert (tmp_path / "results.md").read_text() == (
        "# Benchmark results\n\nintro\n\n## 1. One\n\none\n\n## 5. Rules after a month\n\nfive\n\n"
        "## 6. Beyond one machine\n\nnew\n"
    )


@pytest.mark.processes
def test_the_store_keeps_one_copy_of_both_replicas_with_dedup_and_both_without():
    result = beyond.store_disk(span=600)
    steps, series = 600 // STEP, result.series
    assert result.samples == steps * series
    # deduplicated at the scrape interval: one sample per interval, whichever replica's
    assert result.kept["one"] == result.kept["two"] == result.samples
    # kept: both copies, but for b's last sample, 2.3 s past the end of the window asked
    assert result.kept["kept"] == 2 * result.samples - series
    assert len(set(result.answered.values())) == 1 and result.answered["one"] > 0
    # on disk (at this size mostly the store's own files: the day's sizes are in bench/results.md)
    assert min(result.bytes_one_copy, result.bytes_two_copies, result.bytes_two_copies_kept) > 0


@pytest.mark.processes
def test_two_scrapers_answer_twice_the_scrapes_of_one_and_each_costs_cpu(monkeypatch):
    monkeypatch.setattr(beyond, "SCRAPE_WINDOW_SECONDS", 1.0)
    cost = beyond.scraper_cost(rounds=1)
    (none,), (one,), (two,) = (cost.scrapes[n] for n in beyond.SCRAPERS)
    assert none == 0 and one >= 3 and abs(two - 2 * one) <= 2
    assert all(ms > 0 for ms in cost.per_scrape_ms())
