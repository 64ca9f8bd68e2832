"""Fault injection: who may change it, what it accepts, and that every worker obeys."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict

from .helpers import gunicorn, samples, value

TOKEN = "test-admin-token"
NONE = {"error_rate": 0.0, "latency_ms": 0.0, "cpu_ms": 0.0, "leak_mb": 0.0}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def faulty_app(make_app, statsd_server, tmp_path):
    return make_app(
        {
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": statsd_server.port,
            "DB_DELAY_MIN_SECONDS": 0.0,
            "DB_DELAY_MAX_SECONDS": 0.0,
            "LAB_ADMIN_TOKEN": TOKEN,
            "LAB_FAULTS_FILE": str(tmp_path / "faults.json"),
        }
    )


@pytest.fixture
def client(faulty_app):
    return faulty_app.test_client()


def put(client, body, headers=AUTH):
    return client.put("/faults", json=body, headers=headers)


def test_no_faults_at_first(client):
    response = client.get("/faults")
    assert response.status_code == 200
    assert response.json == {**NONE, "routes": {}}


def test_writes_are_off_without_a_configured_token(make_app, tmp_path):
    client = make_app({"STATSD_HOST": "127.0.0.1", "LAB_FAULTS_FILE": str(tmp_path / "f.json")}).test_client()
    for response in (put(client, {"error_rate": 1}), client.delete("/faults", headers=AUTH)):
        assert response.status_code == 403
        assert "LAB_ADMIN_TOKEN" in response.json["error"]
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong-token", "no-scheme", "basic"],
)
def test_writes_need_the_bearer_token(client, headers):
    for response in (put(client, {"error_rate": 1}, headers), client.delete("/faults", headers=headers)):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json == {"error": "expected Authorization: Bearer <LAB_ADMIN_TOKEN>"}
    assert client.get("/faults").json["error_rate"] == 0.0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"error_rate": 1.5}, "error_rate", "expected a number from 0 to 1, got 1.5"),
        ({"error_rate": -0.1}, "error_rate", "expected a number from 0 to 1, got -0.1"),
        ({"error_rate": "0.5"}, "error_rate", "expected a number from 0 to 1, got '0.5'"),
        ({"error_rate": True}, "error_rate", "expected a number from 0 to 1, got True"),
        ({"latency_ms": 10001}, "latency_ms", "expected a number from 0 to 10000, got 10001"),
        ({"latency_ms": None}, "latency_ms", "expected a number from 0 to 10000, got None"),
        ({"error": 1}, "error", "unknown field; expected error_rate, latency_ms, cpu_ms, leak_mb, routes"),
        ([0.5], "body", "expected a JSON object"),
        ({"routes": ["/"]}, "routes", "expected an object of URL rule -> fault"),
        ({"routes": {"/nope": {}}}, "routes./nope", "not a route of this app; expected one of"),
        ({"routes": {"/metrics/": {}}}, "routes./metrics/", "not a route of this app"),
        ({"routes": {"/": {"rate": 1}}}, "routes./", "expected an object with any of error_rate, latency_ms"),
        ({"cpu_ms": 10001}, "cpu_ms", "expected a number from 0 to 10000, got 10001"),
        ({"leak_mb": 65}, "leak_mb", "expected a number from 0 to 64, got 65"),
        ({"routes": {"/": {"leak_mb": -1}}}, "routes./.leak_mb", "expected a number from 0 to 64, got -1"),
        ({"routes": {"/": {"error_rate": 2}}}, "routes./.error_rate", "expected a number from 0 to 1, got 2"),
    ],
)
def test_a_bad_setting_is_a_400_naming_the_field_and_the_range(client, body, field, message):
    response = put(client, body)
    assert response.status_code == 400
    assert response.json["field"] == field
    assert response.json["error"].startswith(f"{field}: {message}")
    assert client.get("/faults").json["error_rate"] == 0.0  # nothing changed


def test_a_body_that_is_not_json_is_a_400(client):
    response = client.put("/faults", data="error_rate=1", headers=AUTH)
    assert response.status_code == 400
    assert response.json == {
        "error": "expected a JSON body (Content-Type: application/json)",
        "field": "body",
    }


def test_error_rate_one_fails_every_request_and_delete_clears_it(client):
    assert put(client, {"error_rate": 1}).status_code == 200
    answers = [client.get("/") for _ in range(5)]
    assert [answer.status_code for answer in answers] == [500] * 5
    assert answers[0].json == {"error": "injected fault", "error_rate": 1.0}
    deleted = client.delete("/faults", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json == {**NONE, "routes": {}}
    assert [client.get("/").status_code for _ in range(5)] == [200] * 5


def test_metrics_health_and_the_faults_endpoint_never_fail_on_purpose(client):
    put(client, {"error_rate": 1, "latency_ms": 200})
    started = time.perf_counter()
    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/faults").status_code == 200
    assert time.perf_counter() - started < 0.2  # none of the three was delayed


def test_a_route_override_starts_from_the_default(client):
    body = {"latency_ms": 50, "routes": {"/database/": {"error_rate": 1}}}
    assert put(client, body).json == {
        **NONE,
        "latency_ms": 50.0,
        "routes": {"/database/": {**NONE, "error_rate": 1.0, "latency_ms": 50.0}},
    }
    assert client.get("/database/").status_code == 500
    started = time.perf_counter()
    assert client.get("/").status_code == 200
    assert time.perf_counter() - started >= 0.05


def test_cpu_ms_burns_that_much_of_the_request_threads_cpu(client):
    put(client, {"routes": {"/": {"cpu_ms": 80}}})
    started = time.thread_time()  # the test client answers in this thread
    assert client.get("/").status_code == 200
    assert time.thread_time() - started >= 0.08
    started = time.thread_time()
    client.get("/database/")  # another route: no fault
    assert time.thread_time() - started < 0.08


def test_leak_mb_keeps_memory_per_request_up_to_the_cap_and_lets_go_once_no_fault_leaks(client, monkeypatch):
    from app import faults

    monkeypatch.setattr(faults, "MAX_LEAK_MB", 5)
    put(client, {"routes": {"/": {"leak_mb": 2}}})
    client.get("/")
    client.get("/database/")  # no leak on this route
    assert faults.leaked_mb() == 2
    client.get("/")
    client.get("/")  # 6 MB asked, the cap is 5
    assert faults.leaked_mb() == 5
    put(client, {"latency_ms": 1})  # a fault still, but none that leaks
    client.get("/database/")
    assert faults.leaked_mb() == 0
    put(client, {"leak_mb": 1})
    client.get("/")
    client.delete("/faults", headers=AUTH)  # no faults at all
    client.get("/")
    assert faults.leaked_mb() == 0


def test_a_faults_file_from_before_cpu_and_leak_means_none_of_them(faulty_app, client):
    old = {"error_rate": 0.0, "latency_ms": 5.0, "routes": {"/": {"error_rate": 1.0, "latency_ms": 0.0}}}
    Path(faulty_app.config["LAB_FAULTS_FILE"]).write_text(json.dumps(old))
    assert client.get("/faults").json == {
        **NONE,
        "latency_ms": 5.0,
        "routes": {"/": {**NONE, "error_rate": 1.0}},
    }


def test_an_injected_error_is_counted_as_a_500_of_its_route(client):
    put(client, {"routes": {"/": {"error_rate": 1}}})
    labels = {"method": "GET", "route": "/", "status": "500"}
    before = value(samples(client.get("/metrics").text), "http_requests_total", **labels)
    client.get("/")
    after = value(samples(client.get("/metrics").text), "http_requests_total", **labels)
    assert after - before == 1


def test_a_broken_faults_file_means_no_faults_not_a_crash(faulty_app, client, caplog):
    Path(faulty_app.config["LAB_FAULTS_FILE"]).write_text("{not json")  # before the app first looks
    assert client.get("/").status_code == 200
    assert "ignoring unreadable faults file" in caplog.text


def answers_per_worker(server, status: str) -> dict[int, float]:
    """GET / answers with `status`, per live worker, from each worker's own counter file."""
    counts = {}
    for pid in server.workers():
        path = server.multiproc / f"counter_{pid}.db"
        counts[pid] = sum(
            value
            for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
            if json.loads(key)[2] == {"method": "GET", "route": "/", "status": status}
        )
    return counts


@pytest.mark.processes
def test_every_gunicorn_worker_obeys_within_a_second():
    within = 1.0  # seconds: app/faults.py's promise, each worker looking at the file every 0.5 s
    env = {"GUNICORN_WORKERS": "3", "LAB_ADMIN_TOKEN": TOKEN, "STATSD_HOST": "127.0.0.1"}
    with gunicorn(**env) as server, ThreadPoolExecutor(max_workers=3) as pool:

        def three_at_a_time(rounds: int) -> list[int]:
            # With a delay injected, three concurrent requests keep all three workers busy.
            answers = pool.map(lambda _: requests.get(server.url + "/", timeout=10), range(3 * rounds))
            return [answer.status_code for answer in answers]

        def after_the_promise(change):
            # Poll nothing: a request can reach a worker that has already looked while another has not,
            # so "three answers agree" proves nothing. Wait out the promise, then every answer must obey.
            assert change().status_code == 200  # the file is replaced before the answer leaves
            time.sleep(within)

        fault = {"error_rate": 1, "latency_ms": 100}
        after_the_promise(lambda: requests.put(server.url + "/faults", json=fault, headers=AUTH))
        assert three_at_a_time(4) == [500] * 12
        failed = answers_per_worker(server, "500")
        assert len(failed) == 3 and all(failed.values()), f"a worker answered no request: {failed}"

        after_the_promise(lambda: requests.delete(server.url + "/faults", headers=AUTH))
        assert three_at_a_time(10) == [200] * 30


def test_lab_faults_puts_the_settings_given_for_one_route_or_all(capsys):
    from lab import fault_control

    class Recording:
        def __init__(self):
            self.put = []

        def replace(self, faults):
            self.put.append(faults)
            return faults

    control = Recording()
    settings = {"error_rate": None, "latency_ms": None, "cpu_ms": 50.0, "leak_mb": 4.0}
    assert fault_control.main(control, settings, "/", clear=False) == 0
    assert fault_control.main(control, settings, None, clear=False) == 0
    assert control.put == [
        {"routes": {"/": {"cpu_ms": 50.0, "leak_mb": 4.0}}},
        {"cpu_ms": 50.0, "leak_mb": 4.0},
    ]
    with pytest.raises(fault_control.FaultControlError, match="--cpu-ms and/or --leak-mb"):
        fault_control.main(control, dict.fromkeys(settings), "/", clear=False)
