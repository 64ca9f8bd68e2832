"""Prometheus scrapes app and worker; the in-flight gauges come back to 0."""

from concurrent.futures import ThreadPoolExecutor

import requests

from app.signals import HTTP_CAPACITY, HTTP_IN_FLIGHT

from ..helpers import wait_until


def test_app_worker_and_prometheus_targets_are_up(stack):
    for job in ("app", "worker", "prometheus"):
        wait_until(lambda j=job: stack.promql(f'min(up{{job="{j}"}})'), 1.0, 30, f"up{{job={job!r}}}")


def test_the_workers_summary_is_scraped(stack):
    wait_until(
        lambda: stack.promql("sum(request_processing_seconds_count) > bool 0"), 1.0, 30, "worker summary"
    )


def test_capacity_is_workers_times_threads(stack):
    capacity = f"sum({stack.pull.select(HTTP_CAPACITY.name)})"
    wait_until(lambda: stack.promql(capacity), float(stack.capacity), 30, "capacity (workers x threads)")


def test_in_flight_rises_under_load_and_returns_to_zero(stack):
    gauge = stack.push.in_flight_series()
    with ThreadPoolExecutor(max_workers=3) as pool:
        # /database/ sleeps 0.2-0.4 s in the test stack: long enough to be seen.
        futures = [pool.submit(requests.get, stack.app + "/database/", timeout=10) for _ in range(12)]
        assert all(future.result().status_code == 200 for future in futures)
    timeout = 10 * stack.settle_seconds()
    # StatsD saw requests in flight (its gauge exists) and then none.
    wait_until(lambda: stack.graphite_last(gauge), 0.0, timeout, gauge)
    in_flight = f"sum({stack.pull.select(HTTP_IN_FLIGHT.name)})"
    wait_until(lambda: stack.promql(in_flight), 0.0, timeout, in_flight)
    peak = stack.promql(f"max_over_time({in_flight}[1m:1s])")
    assert peak >= 1, "Prometheus never saw a request in flight"
