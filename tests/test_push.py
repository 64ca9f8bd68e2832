"""StatsD pushes: the exact datagrams, one per request, gauges as deltas."""

import socket
import threading

from flask import request

from app.push import Counter
from lab.settings import UNRESOLVABLE

from .helpers import wait_until


def test_one_datagram_per_request_with_counter_and_timer(client, statsd_server):
    client.get("/")
    (datagram,) = statsd_server.datagrams()
    counter, timer = datagram.split("\n")
    assert counter == "lab.app.http.requests.index.GET.200:1|c"
    assert timer.startswith("lab.app.http.latency.index.GET:") and timer.endswith("|ms")


def test_database_sends_its_query_timer_in_the_same_datagram(client, statsd_server):
    client.get("/database/")
    (datagram,) = statsd_server.datagrams()
    names = [line.split(":")[0] for line in datagram.split("\n")]
    assert names == [
        "lab.app.db.query.select",
        "lab.app.http.requests.database.GET.200",
        "lab.app.http.latency.database.GET",
    ]


def test_names_use_the_endpoint_the_normalised_method_and_the_status(app, statsd_server):
    app.testing = False
    client = app.test_client()
    client.get("/nope")
    client.post("/")
    client.open("/", method="BREW")
    client.get("/error/")
    stats = statsd_server.stats()
    for name in (
        "lab.app.http.requests.unmatched.GET.404:1|c",
        "lab.app.http.requests.index.POST.405:1|c",
        "lab.app.http.requests.index.other.405:1|c",
        "lab.app.http.requests.error.GET.500:1|c",
    ):
        assert stats[name] == 1, name
    assert len(statsd_server.datagrams(wait=0.05)) == 0  # nothing else came


def test_prefix_comes_from_statsd_prefix(make_app, statsd_server, monkeypatch):
    monkeypatch.setenv("STATSD_PREFIX", "shop.web")
    app = make_app({"STATSD_HOST": "127.0.0.1", "STATSD_PORT": statsd_server.port})
    app.test_client().get("/")
    assert "shop.web.http.requests.index.GET.200:1|c" in statsd_server.stats()


def test_in_flight_gauge_is_pushed_as_deltas(app, statsd_server):
    push = app.extensions["lab.metrics"].push
    first, second = {}, {}
    push.request_started(first)
    push.request_started(second)
    push.push_in_flight()
    push.request_finished(first, "GET", "index", 200, 0.001)
    push.push_in_flight()
    push.push_in_flight()  # no change since the last push: nothing is sent
    push.request_finished(second, "GET", "index", 200, 0.001)
    push.push_in_flight()
    gauges = [line for datagram in statsd_server.datagrams() for line in datagram.split("\n") if "|g" in line]
    assert gauges == [
        "lab.app.http.in_flight:+2|g",
        "lab.app.http.in_flight:-1|g",
        "lab.app.http.in_flight:-1|g",
    ]


def test_a_stopping_worker_takes_its_share_out_of_the_gauge(app, statsd_server):
    push = app.extensions["lab.metrics"].push
    push.request_started({})
    push.push_in_flight()
    app.extensions["lab.metrics"].worker_stopping()
    gauges = [line for line in statsd_server.stats() if "|g" in line]
    assert gauges == ["lab.app.http.in_flight:+1|g", "lab.app.http.in_flight:-1|g"]


def test_the_app_serves_while_the_host_does_not_resolve_and_pushes_once_it_does(
    make_app, statsd_server, monkeypatch, caplog
):
    name_known = threading.Event()
    resolve = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        # The name server of the test: it knows the StatsD host only from `name_known` on,
        # as compose's DNS knows graphite only once that service is up.
        if host == UNRESOLVABLE:
            if not name_known.is_set():
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = "127.0.0.1"
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    app = make_app(
        {
            "STATSD_HOST": UNRESOLVABLE,
            "STATSD_PORT": statsd_server.port,
            "STATSD_GAUGE_INTERVAL": 0.01,
            "STATSD_RESOLVE_INTERVAL": 0.05,
        }
    )
    assert f"{UNRESOLVABLE}:{statsd_server.port} unavailable" in caplog.text
    client = app.test_client()
    assert client.get("/").status_code == 200  # not pushed; it starts the thread that retries the host
    name_known.set()
    push = app.extensions["lab.metrics"].push
    wait_until(lambda: push.client is not None, True, 5, "the reporter thread resolving the host")
    client.get("/")
    push.close()  # its ticks (the faults, every 10 ms) would keep the listener from ever going quiet
    assert statsd_server.stats()["lab.app.http.requests.index.GET.200:1|c"] == 1


def test_the_posts_counter_helper_pushes_prefix_and_name(app, statsd_server):
    with app.app_context():
        counter = Counter("app.views")
        counter += 1
        counter += 2
    assert isinstance(counter, Counter)  # the post's version turned it into None
    assert statsd_server.datagrams() == ["lab.app.app.views:1|c", "lab.app.app.views:2|c"]


def test_the_posts_counter_joins_the_request_datagram(app, statsd_server):
    with app.test_request_context("/"):
        app.preprocess_request()
        push = app.extensions["lab.metrics"].push
        push.request_started(request.environ)
        counter = Counter("visits")
        counter += 1
        push.request_finished(request.environ, "GET", "index", 200, 0.002)
    (datagram,) = statsd_server.datagrams()
    assert datagram.split("\n")[0] == "lab.app.visits:1|c"


def test_a_request_in_flight_across_a_re_resolve_still_sends_its_datagram(app, statsd_server):
    push = app.extensions["lab.metrics"].push
    with app.test_request_context("/"):
        push.request_started(request.environ)
        push.timing("db.query.select", 0.001)  # the request's pipeline, on the client of the moment
        push.reresolve()  # the reporter thread does this every STATSD_RESOLVE_INTERVAL
        push.request_finished(request.environ, "GET", "index", 200, 0.002)
    (datagram,) = statsd_server.datagrams()
    assert [line.split(":")[0] for line in datagram.split("\n")] == [
        "lab.app.db.query.select",
        "lab.app.http.requests.index.GET.200",
        "lab.app.http.latency.index.GET",
    ]


def test_a_failing_recorder_costs_a_data_point_never_the_answer(app, monkeypatch, caplog):
    push = app.extensions["lab.metrics"].push
    monkeypatch.setattr(push, "request_finished", lambda *args: 1 / 0)
    assert app.test_client().get("/").status_code == 200
    assert "could not record the metrics of /" in caplog.text


def test_names_with_a_percent_sign_or_too_long_for_one_datagram_still_go_out_right(app, statsd_server):
    push = app.extensions["lab.metrics"].push
    push.request_finished({}, "GET", "100%_done", 200, 0.001, in_flight=False)
    (datagram,) = statsd_server.datagrams()
    counter, timer = datagram.split("\n")
    assert counter == "lab.app.http.requests.100%_done.GET.200:1|c"
    assert timer.startswith("lab.app.http.latency.100%_done.GET:") and timer.endswith("|ms")
    # past pystatsd's 512 bytes the pipeline splits the lines, as it always did
    long_endpoint = "e" * 300
    push.request_finished({}, "GET", long_endpoint, 200, 0.001, in_flight=False)
    counter, timer = statsd_server.datagrams()
    assert counter == f"lab.app.http.requests.{long_endpoint}.GET.200:1|c"
    assert timer.startswith(f"lab.app.http.latency.{long_endpoint}.GET:")
