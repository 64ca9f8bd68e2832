"""Prometheus scrapes app and worker; capacity is right and the in-flight gauges come back to 0
in all three pipelines."""

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
    # pushed: each live worker's last export within the window
    otel = stack.otel_queries
    pushed = f"sum({otel.current(otel.names.capacity, fresh=True)})"
    wait_until(lambda: stack.otel_promql(pushed), float(stack.capacity), 30, "OTLP capacity")


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
    otel = stack.otel_queries
    active = f"sum({otel.current(otel.names.in_flight, fresh=True)})"
    wait_until(lambda: stack.otel_promql(active), 0.0, timeout, active)
    peak = stack.promql(f"max_over_time({in_flight}[1m:1s])")
    assert peak >= 1, "Prometheus never saw a request in flight"
