"""The app under real gunicorn workers: one scrape answers for all of them."""

import shutil
import subprocess

import pytest
import requests

from .helpers import UdpListener, gunicorn, samples, value, wait_for_workers

pytestmark = pytest.mark.processes  # every test here starts processes

FAST_DB = {"DB_DELAY_MIN_SECONDS": "0", "DB_DELAY_MAX_SECONDS": "0.01"}


@pytest.fixture(scope="module")
def statsd():
    with UdpListener() as listener:
        yield listener


@pytest.fixture(scope="module")
def three_workers(statsd):
    with gunicorn(
        GUNICORN_WORKERS="3", STATSD_HOST="127.0.0.1", STATSD_PORT=str(statsd.port), **FAST_DB
    ) as server:
        wait_for_workers(server, 3)  # all three started, not only the first to answer
        yield server.url


def test_one_scrape_sums_every_worker(three_workers, statsd):
    url = three_workers
    sent = {
        ("GET", "/", "200"): 40,
        ("GET", "unmatched", "404"): 12,
        ("POST", "/", "405"): 7,
        ("GET", "/error/", "500"): 5,
        ("GET", "/database/", "200"): 6,
    }
    paths = {"/": "/", "unmatched": "/no/such/page", "/error/": "/error/", "/database/": "/database/"}
    statsd.datagrams(wait=0.05)  # drop what the start-up sent
    for (method, route, status), count in sent.items():
        for _ in range(count):
            # A new connection each time, so gunicorn spreads them over workers.
            assert requests.request(method, url + paths[route]).status_code == int(status)

    scraped = samples(requests.get(url + "/metrics").text)

    for (method, route, status), count in sent.items():
        assert value(scraped, "http_requests_total", method=method, route=route, status=status) == count
    assert value(scraped, "http_request_duration_seconds_count", method="GET", route="/") == 40
    assert value(scraped, "requests_total", endpoint="/") == 40
    assert value(scraped, "slow_count", endpoint="/database/") == 6
    assert value(scraped, "db_query_duration_seconds_count", operation="select") == 6
    assert value(scraped, "http_requests_capacity") == 3  # 3 workers x 1 thread
    assert value(scraped, "http_requests_in_flight") == 0

    # The same requests, pushed: one datagram each (the scrape's may follow).
    datagrams = statsd.datagrams()
    request_datagrams = [d for d in datagrams if ".metrics." not in d and "|g" not in d]
    assert len(request_datagrams) == sum(sent.values())
    counts = [line for d in request_datagrams for line in d.split("\n") if line.endswith("|c")]
    assert counts.count("lab.app.http.requests.index.GET.200:1|c") == 40
    assert counts.count("lab.app.http.requests.error.GET.500:1|c") == 5
    assert len(counts) == sum(sent.values())


def test_exposition_passes_promtool_check_metrics(three_workers):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: `make deps` installs Debian's prometheus package")
    requests.get(three_workers + "/database/")
    body = requests.get(three_workers + "/metrics").content
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_threaded_workers_count_concurrent_requests_exactly():
    # gthread workers answer several requests at once: the recorders' writes from
    # concurrent threads must not lose any.
    from concurrent.futures import ThreadPoolExecutor

    with UdpListener() as statsd, ThreadPoolExecutor(max_workers=8) as pool:
        env = {"GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4", "STATSD_PORT": str(statsd.port)}
        with gunicorn(STATSD_HOST="127.0.0.1", **env, **FAST_DB) as server:
            wait_for_workers(server, 8)  # both workers started: 2 x 4 threads
            pushed = pool.submit(statsd.stats, wait=2.0)  # read as they come
            paths = ["/", "/database/"] * 150
            statuses = list(pool.map(lambda path: requests.get(server.url + path).status_code, paths))
            scraped = server.scrape()
        pushed = pushed.result()
    assert statuses == [200] * 300
    assert value(scraped, "http_requests_total", method="GET", route="/", status="200") == 150
    assert value(scraped, "http_request_duration_seconds_count", method="GET", route="/database/") == 150
    assert value(scraped, "requests_total", endpoint="/") == 150
    assert value(scraped, "http_requests_in_flight") == 0
    assert value(scraped, "http_requests_capacity") == 8
    assert pushed["lab.app.http.requests.index.GET.200:1|c"] == 150
    assert pushed["lab.app.http.requests.database.GET.200:1|c"] == 150
