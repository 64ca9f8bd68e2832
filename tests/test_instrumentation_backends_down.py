"""Backends come and go; the app does not notice. Real processes: gunicorn, npm's
StatsD daemon, Debian's Prometheus, the native stack's OTLP receiver.

What each pipeline loses while its backend is down is the lesson: StatsD push loses
the requests of that time (nobody received the datagrams), pull loses nothing (the
counters kept counting; the next scrape sees them), only resolution, and so does
OTLP push (each export carries the totals since the worker started).
"""

import pytest
import requests

from lab.queries import OtelQueries, is_
from lab.settings import UNRESOLVABLE, free_port
from lab.stack.statsd_daemon import statsd_daemon

from .helpers import (
    OtlpReceiver,
    gunicorn,
    otlp_receiving,
    prometheus_scraping,
    value,
    wait_until,
)

pytestmark = pytest.mark.processes  # every test here starts processes

INDEX_200 = "lab.app.http.requests.index.GET.200"
FAST = {"GUNICORN_WORKERS": "2", "DB_DELAY_MIN_SECONDS": "0", "DB_DELAY_MAX_SECONDS": "0.01"}
# seconds for a backend to show what was sent (a few scrapes, a restart)
TIMEOUT = 20


def get_index(url: str, times: int) -> list[int]:
    return [requests.get(url + "/", timeout=10).status_code for _ in range(times)]


def test_statsd_stopped_then_back_on_its_port_gets_the_pushes_again_without_a_restart():
    with (
        statsd_daemon() as statsd,
        gunicorn(STATSD_HOST="127.0.0.1", STATSD_PORT=str(statsd.port), **FAST) as app,
    ):
        assert get_index(app.url, 20) == [200] * 20
        wait_until(lambda: statsd.counters().get(INDEX_200), 20, TIMEOUT, "pushes before the stop")

        statsd.stop()
        assert get_index(app.url, 20) == [200] * 20  # nobody listens: no error, no delay

        with statsd_daemon(statsd.port) as back:
            assert get_index(app.url, 20) == [200] * 20
            # the 20 sent while it was down are gone: push has no memory
            wait_until(lambda: back.counters().get(INDEX_200), 20, TIMEOUT, "pushes after the restart")
        assert value(app.scrape(), "http_requests_total", method="GET", route="/", status="200") == 60


def test_an_unresolvable_statsd_host_costs_no_request():
    with gunicorn(STATSD_HOST=UNRESOLVABLE, **FAST) as app:
        assert get_index(app.url, 30) == [200] * 30
        assert value(app.scrape(), "http_requests_total", method="GET", route="/", status="200") == 30


def test_prometheus_stopped_loses_no_request_it_scrapes_them_when_back(tmp_path):
    with gunicorn(STATSD_HOST=UNRESOLVABLE, **FAST) as app:
        query = 'sum(http_requests_total{route="/"})'
        with prometheus_scraping(app.url, tmp_path) as prometheus:
            assert get_index(app.url, 10) == [200] * 10
            wait_until(lambda: prometheus.value(query), 10, TIMEOUT, "Prometheus before its stop")
        assert get_index(app.url, 15) == [200] * 15  # nothing scrapes: nothing changes for the app
        with prometheus_scraping(app.url, tmp_path) as prometheus:  # same data directory
            wait_until(lambda: prometheus.value(query), 25, TIMEOUT, "Prometheus after its restart")


def otlp_app(receiver_port: int, **settings):
    """The app pushing OTLP only, every 200 ms, to the receiver on `receiver_port`."""
    return gunicorn(
        LAB_METRICS="otel",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=OtlpReceiver(f"http://127.0.0.1:{receiver_port}").endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="200",
        STATSD_HOST=UNRESOLVABLE,
        **{**FAST, **settings},
    )


OTEL = OtelQueries(scope=(is_("job", "app"),))
OTEL_INDEX = OTEL.total(is_(OTEL.names.route, "/"))


def test_the_otlp_receiver_stopped_loses_no_request_its_next_exports_carry_them(tmp_path):
    port = free_port()
    with otlp_app(port) as app:
        with otlp_receiving(tmp_path, port) as receiver:
            assert get_index(app.url, 20) == [200] * 20
            wait_until(lambda: receiver.value(OTEL_INDEX), 20, TIMEOUT, "OTLP before the receiver stops")
        assert get_index(app.url, 20) == [200] * 20  # exports fail meanwhile, in their own thread
        with otlp_receiving(tmp_path, port) as receiver:  # same data directory
            assert get_index(app.url, 10) == [200] * 10
            # cumulative: the first export that gets through carries the 20 sent meanwhile
            wait_until(lambda: receiver.value(OTEL_INDEX), 50, TIMEOUT, "OTLP after the receiver is back")


def test_recycled_workers_push_their_last_counts_as_they_exit_none_is_lost(tmp_path):
    port = free_port()
    with otlp_receiving(tmp_path, port) as receiver:
        with otlp_app(port, GUNICORN_WORKERS="3", GUNICORN_MAX_REQUESTS="7") as app:
            assert get_index(app.url, 60) == [200] * 60
            wait_until(lambda: receiver.value(OTEL_INDEX), 60, TIMEOUT, "OTLP across recycled workers")
            instances = receiver.value(f"count(count by (instance) ({OTEL.current(OTEL.names.requests)}))")
            assert instances > 3, "each worker, the recycled ones too, pushes series of its own"
