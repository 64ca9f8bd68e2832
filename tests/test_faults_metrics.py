"""The faults in force as data: pulled at scrape time, pushed by each worker's reporter thread."""

import time

import pytest

from app.faults import Fault, Faults, FaultStore
from app.signals import LAB_FAULT_ERROR_RATIO, LAB_FAULT_LATENCY

from .helpers import gunicorn, samples, series_of, value, wait_until

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAULT_ROUTES = {"/": "index", "/database/": "database", "/error/": "error"}  # URL rule -> endpoint
SOME_FAULTS = {"error_rate": 0.2, "latency_ms": 300, "routes": {"/database/": {"error_rate": 1}}}


def settings(statsd_server, tmp_path, **extra) -> dict:
    return {
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": statsd_server.port,
        "LAB_ADMIN_TOKEN": TOKEN,
        "LAB_FAULTS_FILE": str(tmp_path / "faults.json"),
        **extra,
    }


@pytest.fixture
def app(make_app, statsd_server, tmp_path):
    # No reporter tick of its own during a test: the tests push by hand or set their own interval.
    return make_app(settings(statsd_server, tmp_path, STATSD_GAUGE_INTERVAL=3600))


@pytest.fixture
def client(app):
    return app.test_client()


def faults_scraped(client) -> dict[str, tuple[float, float]]:
    """Route -> (error ratio, latency in s), as /metrics shows the faults in force."""
    scraped = samples(client.get("/metrics").text)
    routes = {dict(labels)["route"] for labels in series_of(scraped, LAB_FAULT_ERROR_RATIO.name)}
    assert routes == {dict(labels)["route"] for labels in series_of(scraped, LAB_FAULT_LATENCY.name)}
    return {
        route: (
            value(scraped, LAB_FAULT_ERROR_RATIO.name, route=route),
            value(scraped, LAB_FAULT_LATENCY.name, route=route),
        )
        for route in routes
    }


def test_every_fault_route_reads_0_with_no_faults(client):
    # one series per route faults apply to: none for /metrics/, /healthz or /faults
    assert faults_scraped(client) == {route: (0, 0) for route in FAULT_ROUTES}


def test_the_scrape_shows_the_faults_put_per_route_and_0_once_deleted(client):
    assert client.put("/faults", json=SOME_FAULTS, headers=AUTH).status_code == 200
    # an override starts from the default: /database/ keeps the default latency
    assert faults_scraped(client) == {"/": (0.2, 0.3), "/database/": (1, 0.3), "/error/": (0.2, 0.3)}
    assert client.delete("/faults", headers=AUTH).status_code == 200
    assert faults_scraped(client) == {route: (0, 0) for route in FAULT_ROUTES}


def test_a_scrape_of_a_fresh_multiprocess_directory_holds_the_faults(client, monkeypatch, tmp_path):
    # Read from the faults file, not from any worker's file: there even before a worker wrote one.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    client.put("/faults", json={"routes": {"/": {"error_rate": 0.5}}}, headers=AUTH)
    assert faults_scraped(client)["/"] == (0.5, 0)


def test_without_a_multiprocess_directory_many_apps_each_scrape_their_own_faults(
    make_app, statsd_server, tmp_path, monkeypatch
):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    first, second = (
        make_app(settings(statsd_server, tmp_path / name)).test_client() for name in ("first", "second")
    )
    first.put("/faults", json={"error_rate": 1}, headers=AUTH)
    second.get("/")
    assert faults_scraped(first)["/"] == (1, 0)
    assert faults_scraped(second)["/"] == (0, 0)
    scraped = samples(second.get("/metrics").text)  # the workers' own metrics are still there
    assert value(scraped, "http_requests_total", method="GET", route="/", status="200") >= 1


def test_pull_off_scrapes_no_faults(make_app, statsd_server, tmp_path):
    client = make_app(settings(statsd_server, tmp_path, LAB_METRICS="statsd")).test_client()
    assert not series_of(samples(client.get("/metrics").text), LAB_FAULT_ERROR_RATIO.name)


def pushed_faults(endpoint: str, error_ratio: str, latency_ms: str) -> list[str]:
    return [
        f"lab.app.faults.{endpoint}.error_ratio:{error_ratio}|g",
        f"lab.app.faults.{endpoint}.latency_ms:{latency_ms}|g",
    ]


def test_one_datagram_holds_the_in_flight_change_and_every_routes_faults(app, client, statsd_server):
    client.put("/faults", json=SOME_FAULTS, headers=AUTH)
    statsd_server.datagrams()  # drop the PUT's own stats
    push = app.extensions["lab.metrics"].push
    push.request_started({})
    push.push_gauges()
    push.push_gauges()  # the in-flight change is sent once; the faults, absolute, every time
    first, second = statsd_server.datagrams()
    faults = [
        *pushed_faults("index", "0.2", "300"),
        *pushed_faults("database", "1", "300"),
        *pushed_faults("error", "0.2", "300"),
    ]
    assert first.split("\n") == ["lab.app.http.in_flight:+1|g", *faults]
    assert second.split("\n") == faults


def received(listener, seconds: float) -> list[tuple[list[str], tuple]]:
    """The lines and the sender of each datagram that arrives within `seconds`, however fast they come."""
    datagrams = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        listener.sock.settimeout(left)
        try:
            data, sender = listener.sock.recvfrom(65535)
        except TimeoutError:
            break
        datagrams.append((data.decode().split("\n"), sender))
    return datagrams


def test_the_reporter_pushes_the_faults_from_the_worker_start_with_no_request(
    make_app, statsd_server, tmp_path
):
    app = make_app(settings(statsd_server, tmp_path, STATSD_GAUGE_INTERVAL=0.05))
    app.extensions["lab.faults"].replace(Faults(Fault(error_rate=1)))  # what PUT does, with no request
    app.extensions["lab.metrics"].worker_started(threads=1)  # gunicorn's post_worker_init
    pushed = received(statsd_server, 0.5)
    assert len(pushed) >= 2  # one per tick
    assert all(lines[:2] == pushed_faults("index", "1", "0") for lines, _ in pushed)


@pytest.mark.processes
def test_every_gunicorn_worker_pushes_the_faults_and_one_scrape_shows_them_once(statsd_server):
    env = {
        "GUNICORN_WORKERS": "2",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(statsd_server.port),
        "STATSD_GAUGE_INTERVAL": "0.1",
    }
    with gunicorn(**env) as server:
        # Written as PUT writes it, with no request: only the readiness checks reached the workers.
        FaultStore(server.multiproc / "faults.json").replace(Faults(routes={"/": Fault(latency_ms=20)}))
        line = "lab.app.faults.index.latency_ms:20|g"

        def senders() -> int:
            # each worker sends from its own socket, and re-reads the file within a second
            return len({sender for lines, sender in received(statsd_server, 1.0) if line in lines})

        wait_until(senders, 2, 10, "workers pushing the fault")
        scraped = server.scrape()
    assert value(scraped, LAB_FAULT_LATENCY.name, route="/") == 0.02  # the value set, not summed
    assert len(series_of(scraped, LAB_FAULT_LATENCY.name)) == len(FAULT_ROUTES)
