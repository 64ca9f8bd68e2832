"""Prometheus metrics: names, labels and counts as the metric contract says.

The metrics live for the whole test process (as in a gunicorn worker), so each
test compares a scrape after its requests with one before.
"""

import os
import warnings

import pytest

from app.signals import LATENCY_BUCKETS

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


def test_metrics_with_and_without_its_slash_is_one_route(client):
    before = scrape(client)  # GET /metrics, counted once it has answered: in the next scrape
    client.get("/metrics/")
    after = scrape(client)
    labels = {"method": "GET", "route": "/metrics/", "status": "200"}
    assert value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels) == 2
    assert "/metrics" not in {dict(series)["route"] for series in series_of(after, "http_requests_total")}


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


# The recorder keeps its label children across requests (app/pull.py): what a scrape reads must
# stay exact when prometheus_client grows its files, and in a forked worker.


def exposed() -> dict:
    from app.pull import exposition

    return samples(exposition()[0].decode())


def test_the_recorders_writes_are_what_a_scrape_reads_even_after_the_files_grow():
    from app.labels import Route
    from app.pull import PullRecorder

    recorder = PullRecorder()
    # 60 routes x 16 histogram entries of ~200 bytes: past the files' first 64 KiB,
    # so prometheus_client re-maps them while the recorder keeps writing.
    routes = [Route(f"/grown/{number}", f"grown_{number}") for number in range(60)]
    before = exposed()
    for times, route in enumerate(routes, start=1):
        for _ in range(times):
            recorder.request_started()
            recorder.request_finished("GET", route, 200, 0.2)
    after = exposed()

    histograms = os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], f"histogram_{os.getpid()}.db")
    assert os.path.getsize(histograms) > 64 * 1024  # the file did grow past its first mapping
    for times, route in enumerate(routes, start=1):
        labels = {"method": "GET", "route": route.template}
        assert value(after, "http_requests_total", status="200", **labels) == times
        assert value(after, "http_request_duration_seconds_count", **labels) == times
        assert value(after, "http_request_duration_seconds_bucket", le="0.25", **labels) == times
        assert value(after, "http_request_duration_seconds_bucket", le="0.1", **labels) == 0
        assert value(after, "http_request_duration_seconds_sum", **labels) == pytest.approx(0.2 * times)
    assert value(after, "http_requests_in_flight") == value(before, "http_requests_in_flight") == 0


def test_a_forked_recorder_writes_its_own_files_not_its_parents():
    from app.labels import Route
    from app.multiproc import archive_dead_process
    from app.pull import PullRecorder

    recorder = PullRecorder()
    route = Route("/forked", "forked")
    recorder.request_finished("GET", route, 200, 0.01, in_flight=False)  # the parent's writers, cached
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads (this one has StatsD reporters)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: like a gunicorn worker forked from a preloaded master
        try:
            recorder.request_finished("GET", route, 200, 0.01, in_flight=False)
            recorder.request_finished("GET", route, 200, 0.01, in_flight=False)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.exists(os.path.join(directory, f"counter_{pid}.db"))  # the child's own file
    labels = {"method": "GET", "route": "/forked", "status": "200"}
    # one from the parent, two from the child
    assert value(exposed(), "http_requests_total", **labels) == 3
    archive_dead_process(pid, directory)  # what gunicorn's master does for a dead worker
    assert value(exposed(), "http_requests_total", **labels) == 3
