"""Prometheus metrics: names, labels and counts as the metric contract says.

The metrics live for the whole test process (as in a gunicorn worker), so each
test compares a scrape after its requests with one before.
"""

import pytest

from app.pull import LATENCY_BUCKETS

from .helpers import samples, series_of, value


def scrape(client) -> dict:
    return samples(client.get("/metrics").text)


@pytest.fixture
def production_client(app):
    app.testing = False  # exceptions become 500s instead of reaching the test
    return app.test_client()


def test_every_request_is_counted_by_method_route_and_status(production_client):
    client = production_client
    before = scrape(client)
    client.get("/")
    client.get("/")
    client.get("/database/")
    client.get("/nope")
    client.post("/")
    client.get("/error/")
    after = scrape(client)

    def delta(**labels):
        return value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels)

    assert delta(method="GET", route="/", status="200") == 2
    assert delta(method="GET", route="/database/", status="200") == 1
    assert delta(method="GET", route="unmatched", status="404") == 1
    assert delta(method="POST", route="/", status="405") == 1
    assert delta(method="GET", route="/error/", status="500") == 1


def test_route_is_the_url_rule_never_the_raw_path(client):
    client.get("/users/12345/orders?id=9")
    client.get("/metrics/")
    routes = {dict(labels)["route"] for labels in series_of(scrape(client), "http_requests_total")}
    assert "unmatched" in routes
    assert "/metrics/" in routes
    assert not any("12345" in route for route in routes)


def test_unknown_verbs_are_counted_as_other(client):
    before = scrape(client)
    client.open("/", method="BREW")
    after = scrape(client)
    labels = {"method": "other", "route": "/", "status": "405"}
    assert value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels) == 1


def test_duration_histogram_has_the_contract_buckets(client):
    client.get("/")
    buckets = {
        dict(labels)["le"]
        for labels in series_of(scrape(client), "http_request_duration_seconds_bucket")
        if dict(labels)["route"] == "/"
    }
    assert {float(le) for le in buckets} == {*map(float, LATENCY_BUCKETS), float("inf")}
    assert LATENCY_BUCKETS[0] == 0.005 and LATENCY_BUCKETS[-1] == 10
    assert {0.3, 1, 2, 3} <= set(LATENCY_BUCKETS)


def test_database_records_the_cause_and_the_posts_histogram(client):
    before = scrape(client)
    client.get("/database/")
    after = scrape(client)
    for name, labels in (
        ("db_query_duration_seconds_count", {"operation": "select"}),
        ("slow_count", {"endpoint": "/database/"}),
        ("http_request_duration_seconds_count", {"method": "GET", "route": "/database/"}),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) == 1, name


def test_the_posts_counter_counts_index_visits(client):
    before = scrape(client)
    client.get("/")
    client.get("/")
    after = scrape(client)
    assert value(after, "requests_total", endpoint="/") - value(before, "requests_total", endpoint="/") == 2


def test_in_flight_is_zero_when_idle_and_leaves_the_scrape_out(client):
    client.get("/")
    # The scrape does not count itself, or the gauge could never read 0.
    assert value(scrape(client), "http_requests_in_flight") == 0


def test_metrics_off_records_nothing(make_app, statsd_server):
    app = make_app({"LAB_METRICS": "off", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": statsd_server.port})
    client = app.test_client()
    before = scrape(client)
    for _ in range(3):
        client.get("/")
    after = scrape(client)
    assert after == before
    assert statsd_server.datagrams() == []
