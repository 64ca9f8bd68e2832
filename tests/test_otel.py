"""OTLP push: the app records with the OpenTelemetry SDK and exports cumulative totals over
OTLP/HTTP, with the contract's semantic-convention names and the lab's bucket edges; a receiver
that is down costs no request and no count."""

import pytest
import requests

from app.signals import (
    LATENCY_BUCKETS,
    OTEL_ACTIVE_REQUESTS,
    OTEL_CAPACITY,
    OTEL_DB_QUERY_DURATION,
    OTEL_REQUEST_DURATION,
    SEMCONV_DB_OPERATION,
    SEMCONV_METHOD,
    SEMCONV_ROUTE,
    SEMCONV_STATUS,
)
from lab.stack.otlp_sink import OtlpSink

from .helpers import free_port, gunicorn, wait_until

DURATION = OTEL_REQUEST_DURATION.name
FAST = {"DB_DELAY_MIN_SECONDS": 0.0, "DB_DELAY_MAX_SECONDS": 0.005, "STATSD_HOST": "127.0.0.1"}


def otel_app(make_app, endpoint: str, **settings):
    return make_app(
        {
            "LAB_METRICS": "otel",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": 100,
            **FAST,
            **settings,
        }
    )


def test_each_request_is_counted_by_route_method_and_status_with_semconv_names(make_app, otlp_server):
    app = otel_app(make_app, otlp_server.url)
    client = app.test_client()
    for _ in range(7):
        assert client.get("/").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    assert client.post("/").status_code == 405
    assert client.get("/database/").status_code == 200
    app.extensions["lab.metrics"].close()  # a worker's exit: the last export goes out

    index = {SEMCONV_ROUTE: "/", SEMCONV_METHOD: "GET"}
    assert otlp_server.total(DURATION, {**index, SEMCONV_STATUS: 200}) == 7
    assert otlp_server.total(DURATION, {SEMCONV_ROUTE: "unmatched", SEMCONV_STATUS: 404}) == 1
    assert otlp_server.total(DURATION, {SEMCONV_ROUTE: "/", SEMCONV_METHOD: "POST", SEMCONV_STATUS: 405}) == 1
    assert otlp_server.total(DURATION) == 10
    assert otlp_server.total(OTEL_DB_QUERY_DURATION.name, {SEMCONV_DB_OPERATION: "select"}) == 1
    assert otlp_server.total(OTEL_ACTIVE_REQUESTS.name) == 0
    assert len(otlp_server.instances()) == 1


def test_histograms_use_the_lab_bucket_edges_in_seconds(make_app, otlp_server):
    app = otel_app(make_app, otlp_server.url)
    app.test_client().get("/")
    app.extensions["lab.metrics"].close()
    assert otlp_server.bounds[DURATION] == list(LATENCY_BUCKETS)
    assert otlp_server.units[DURATION] == "s"


def test_a_worker_counts_its_capacity(make_app, otlp_server):
    app = otel_app(make_app, otlp_server.url)
    app.extensions["lab.metrics"].worker_started(threads=4)
    app.extensions["lab.metrics"].close()
    assert otlp_server.total(OTEL_CAPACITY.name) == 4


def test_a_receiver_that_is_down_costs_no_request_and_no_count_once_it_is_back(make_app, otlp_server):
    otlp_server.answer = 503  # down: every export fails (the SDK retries, then gives up)
    app = otel_app(make_app, otlp_server.url)
    client = app.test_client()
    for _ in range(20):
        assert client.get("/").status_code == 200
    assert otlp_server.total(DURATION) == 0
    otlp_server.answer = 200
    # cumulative: the first export that gets through carries every request so far
    wait_until(lambda: otlp_server.total(DURATION), 20, 15, "requests in the export after the outage")


def test_two_receivers_each_get_every_count_and_one_down_does_not_hold_up_the_other(make_app, otlp_server):
    """OTLP_EXTRA_METRICS_ENDPOINTS (the HA topology's second replica): a reader and an exporter each."""
    with OtlpSink() as other:
        other.answer = 503  # down: its exporter retries in its own thread
        app = otel_app(make_app, otlp_server.url, OTLP_EXTRA_METRICS_ENDPOINTS=other.url)
        client = app.test_client()
        for _ in range(9):
            assert client.get("/").status_code == 200
        wait_until(lambda: otlp_server.total(DURATION), 9, 15, "the receiver that is up")
        assert other.total(DURATION) == 0
        other.answer = 200
        # each reader keeps its own cumulative totals: the one that was down gets them whole
        wait_until(lambda: other.total(DURATION), 9, 15, "the receiver that was down, once back")
        for _ in range(3):
            assert client.get("/").status_code == 200
        app.extensions["lab.metrics"].close()
        assert (otlp_server.total(DURATION), other.total(DURATION)) == (12, 12)
        # the same worker, so the same instance, at both
        assert otlp_server.instances() == other.instances() and len(other.instances()) == 1


def test_no_receiver_at_all_still_answers_every_request(make_app):
    closed_port = free_port()  # nothing listens there
    app = otel_app(make_app, f"http://127.0.0.1:{closed_port}/v1/metrics")
    client = app.test_client()
    assert [client.get("/").status_code for _ in range(20)] == [200] * 20


@pytest.mark.processes
def test_gunicorn_workers_push_their_own_series_and_their_last_counts_on_exit(otlp_server):
    settings = {name: str(value) for name, value in FAST.items()}
    with gunicorn(
        GUNICORN_WORKERS="3",
        GUNICORN_MAX_REQUESTS="15",  # recycled every 15 requests: many workers come and go
        LAB_METRICS="otel",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=otlp_server.url,
        OTEL_METRIC_EXPORT_INTERVAL="60000",  # only the exits export: what they send is complete
        **settings,
    ) as server:
        sent = 0
        for _ in range(150):
            assert requests.get(f"{server.url}/", timeout=10).status_code == 200
            sent += 1
    index = {SEMCONV_ROUTE: "/", SEMCONV_STATUS: 200}
    assert otlp_server.total(DURATION, index) == sent == 150
    assert len(otlp_server.instances()) > 3  # each worker, recycled ones included, is its own instance
    assert otlp_server.total(OTEL_ACTIVE_REQUESTS.name) == 0
