"""lab/bench/history.py: the month of series section 5 backfills, and their live continuation."""

import shutil
import time

import pytest
import requests

from app.signals import LATENCY_BUCKETS
from lab.bench import history
from lab.bench.history import DAY, RATE_WINDOW, RECORDED_RATES, LiveMetrics, Traffic, load_mix
from lab.bench.month import block_stats, run_prometheus
from lab.stack.deps import PROMTOOL_3

STEP = 5
SERIES_PER_ROUTE = 1 + len(LATENCY_BUCKETS) + 1 + 2  # the counter; each bucket and +Inf; count and sum


def test_the_mix_is_the_load_generators_tasks_at_its_users():
    mix = {(route.route, route.status): route.per_second for route in load_mix()}
    # loadgen/locustfile.py's weights 90/5/4/1 of locust.conf's 5 users, one request/s each
    assert mix == {
        ("/", "200"): 4.5,
        ("/database/", "200"): 0.25,
        ("unmatched", "404"): 0.2,
        ("/error/", "500"): 0.05,
    }


def test_counts_only_grow_and_the_histogram_adds_up():
    traffic = Traffic(load_mix(), "127.0.0.1:1", STEP, at=0)
    before = None
    for _ in range(200):
        traffic.advance()
        now = {(name, labels): value for name, labels, value in traffic.samples()}
        if before is not None:
            assert all(now[key] >= before[key] for key in now)
        before = now
    for index in range(len(traffic.mix)):
        buckets = traffic.buckets[index]
        assert buckets == sorted(buckets)  # cumulative
        assert buckets[-1] == traffic.requests[index]  # +Inf: every request of the route
    assert sum(traffic.requests) > 0


def test_the_recorded_rates_are_the_increase_over_five_minutes():
    traffic = Traffic(load_mix(), "127.0.0.1:1", STEP, at=0)
    totals = []
    for _ in range(RATE_WINDOW // STEP):
        traffic.advance()
        totals.append(traffic.totals())
    assert traffic.rates() is None  # a window has not passed yet
    traffic.advance()
    totals.append(traffic.totals())
    expected = tuple((now - then) / RATE_WINDOW for now, then in zip(totals[-1], totals[0], strict=True))
    assert traffic.rates() == expected
    errors, everything, slow, root = expected
    assert 0 < errors < everything and 0 <= slow < root < everything


@pytest.mark.processes
def test_a_day_backfills_every_sample_and_the_live_scrapes_continue_it(tmp_path):
    """promtool 3 turns a day into blocks holding every sample written; Debian's Prometheus opens them
    and scrapes the live continuation: no reset where the history ends, the recorded rates there."""
    if not PROMTOOL_3.exists() or shutil.which("prometheus") is None:
        pytest.fail("promtool 3 or prometheus is missing: `make deps` installs them")
    live = LiveMetrics(time.time)
    end = int(time.time()) // STEP * STEP
    traffic = live.traffic = Traffic(load_mix(), live.target, STEP, at=end - DAY)
    (tmp_path / "work").mkdir()
    written = history.backfill(str(PROMTOOL_3), traffic, end, tmp_path / "blocks", tmp_path / "work")
    steps, routes = DAY // STEP, len(traffic.mix)
    # every step's series, and the four recorded rates from the first full window on
    assert written == steps * routes * SERIES_PER_ROUTE + (steps - RATE_WINDOW // STEP) * len(RECORDED_RATES)
    blocks = sorted((tmp_path / "blocks").iterdir())
    assert block_stats(blocks)[1] == written
    process, url = run_prometheus(tmp_path / "run", blocks, live.target, [])
    try:
        query = lambda expr: requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()  # noqa: E731
        deadline = time.monotonic() + 30
        while not query("up")["data"]["result"] or query("up")["data"]["result"][0]["value"][1] != "1":
            assert time.monotonic() < deadline, "the live series were never scraped"
            time.sleep(1)
        time.sleep(2 * STEP)  # a few scrapes after the history's end
        window = f"[{int(time.time()) - end + 600}s]"  # from before the history's end to now
        result = query(f"sum(resets(http_requests_total{window}))")["data"]["result"]
        assert float(result[0]["value"][1]) == 0
        assert len(query("http_requests_total")["data"]["result"]) == routes
        history_only = query(f"count(last_over_time({RECORDED_RATES[0]}[1h]))")["data"]["result"]
        assert float(history_only[0]["value"][1]) == 1
    finally:
        process.stop(30)
        live.close()
