"""`make native` stops every process it started (on Ctrl-C, and when one dies),
keeps its data across a restart, and its OTLP receiver stores a push as Prometheus 3 does."""

import os
import signal
import socket
import time
from pathlib import Path

import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from lab.backends import OTLP_RECEIVER_PATH
from lab.queries import is_

from ..helpers import wait_until
from .stack import NativeRunner

TCP_PORTS = (
    "APP_PORT",
    "WORKER_PORT",
    "PROMETHEUS_PORT",
    "ALERTMANAGER_PORT",
    "ALERT_SINK_PORT",
    "GRAPHITE_PORT",
    "CARBON_PORT",
    "STATSD_ADMIN_PORT",
    "OTLP_RECEIVER_PORT",
    "NODE_EXPORTER_PORT",
)


def listening(port: str) -> bool:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: it only waits for its parent to read its status
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:  # reaped meanwhile
        return False
    return state != "Z"


def assert_all_stopped(runner: NativeRunner, children: list[int], ports=TCP_PORTS) -> None:
    # carbon, statsd, graphite-web, otlp-receiver, alert-sink, alertmanager, app, worker,
    # node-exporter, collectd, prometheus (and loadgen)
    assert len(children) == 11 + runner.loadgen
    # The runner waited for each; the last may still be in the kernel's hands for a moment.
    wait_until(lambda: [pid for pid in children if alive(pid)], [], 5, "services still running")
    wait_until(lambda: [name for name in ports if listening(runner.ports[name])], [], 5, "ports still open")


def test_ctrl_c_stops_every_service_load_generator_included():
    runner = NativeRunner(loadgen=True)
    ports = (*TCP_PORTS, "LOADGEN_PORT")
    try:
        runner.start()
        children = runner.children()
        assert [name for name in ports if not listening(runner.ports[name])] == []
        # the load generator's traffic reaches Prometheus, as on the dashboards of `make native`
        stack = runner.stack()
        sent = 'sum(http_requests_total{route="/"}) > bool 0'
        wait_until(lambda: stack.promql(sent), 1.0, 10 * stack.settle_seconds(), "load generator traffic")
        # the Graphite URL it printed shows that traffic too, under the app's own STATSD_PREFIX
        (graphite_url,) = [line.split()[1] for line in runner.output if line.split()[:1] == ["graphite-web"]]
        assert stack.push.requests(per_second=False) in graphite_url
        wait_until(
            lambda: any(
                value
                for series in requests.get(graphite_url + "&format=json", timeout=10).json()
                for value, _ in series["datapoints"]
            ),
            True,
            10 * stack.settle_seconds(),
            f"Graphite data at {graphite_url}",
        )
        # and so does the OTLP receiver's URL: the requests the app's workers pushed
        (otel_url,) = [line.split()[1] for line in runner.output if line.split()[:1] == ["otlp-receiver"]]
        assert otel_url.startswith(stack.otel + "/api/v1/query?")
        wait_until(
            lambda: bool(requests.get(otel_url, timeout=10).json()["data"]["result"]),
            True,
            10 * stack.settle_seconds(),
            f"pushed requests at {otel_url}",
        )
        runner.process.send_signal(signal.SIGINT)
        assert runner.wait() == 0
        assert "native stack stopped\n" in runner.output
        assert_all_stopped(runner, children, ports)
    finally:
        if runner.process.poll() is None:
            runner.stop()
        runner.cleanup()


def test_one_service_dying_stops_the_stack():
    runner = NativeRunner()
    try:
        runner.start()
        children = runner.children()
        statsd = next(pid for pid in children if b"statsd" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(statsd, signal.SIGKILL)
        assert runner.wait() == 1
        assert any(line.startswith("statsd exited with -9") for line in runner.output)
        assert_all_stopped(runner, children)
    finally:
        if runner.process.poll() is None:
            runner.stop()
        runner.cleanup()


def test_data_from_before_a_restart_is_still_there():
    first = NativeRunner()
    second = NativeRunner(first.ports, first.data_dir)  # same ports, same data directory
    series = 'sum(max_over_time(http_requests_total{method="GET",route="/",status="200"}[1h]))'
    try:
        first.start()
        stack = first.stack()
        target = stack.push.requests("index", "GET", "200", per_second=False)
        for _ in range(17):
            requests.get(stack.app + "/", timeout=10)
        timeout = 10 * stack.settle_seconds()
        wait_until(lambda: stack.promql(series), 17.0, timeout, "Prometheus before the restart")
        wait_until(lambda: stack.graphite_sum(target), 17.0, timeout, "Graphite before the restart")
        otel = stack.otel_queries
        pushed = otel.total(
            is_(otel.names.method, "GET"), is_(otel.names.route, "/"), is_(otel.names.status, "200")
        )
        wait_until(lambda: stack.otel_promql(pushed), 17.0, timeout, "the OTLP receiver before the restart")
        assert first.stop() == 0

        second.start()
        stack = second.stack()
        stack.started_at -= 3600  # Graphite: sum from well before the first start
        assert stack.promql(series) == 17
        assert stack.graphite_sum(target) == 17
        assert stack.otel_promql(pushed) == 17
    finally:
        for runner in (first, second):
            if getattr(runner, "process", None) is not None and runner.process.poll() is None:
                runner.stop()
        first.cleanup()


def push_once(url: str, resource: dict) -> None:
    """One OTLP export from a fresh MeterProvider: a counter, an up-down counter, a histogram in s."""
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=url), export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create(resource))
    meter = provider.get_meter("lab-test")
    meter.create_counter("lab.test.pushes").add(3, {"http.route": "/x"})
    meter.create_up_down_counter("lab.test.active", unit="{request}").add(2)
    meter.create_histogram("lab.test.duration", unit="s").record(0.25)
    provider.shutdown()  # exports what it holds, once


def series(otel: str, query: str) -> list[dict]:
    """The label sets of what an instant query returns now, with their values as "value"."""
    # `time`: VictoriaMetrics's default is the current second, which misses its last fraction.
    params = {"query": query, "time": f"{time.time():.3f}"}
    answer = requests.get(otel + "/api/v1/query", params=params, timeout=10).json()
    assert answer["status"] == "success", answer
    return [{**result["metric"], "value": result["value"][1]} for result in answer["data"]["result"]]


def test_the_otlp_receiver_stores_a_push_as_prometheus_3_would():
    runner = NativeRunner()
    try:
        runner.start()
        stack = runner.stack()
        otel = stack.otel
        assert requests.get(otel + "/health", timeout=10).text == "OK"
        assert series(otel, "vector(1)") == [{"value": "1"}]  # it answers the Prometheus API

        push_once(otel + OTLP_RECEIVER_PATH, {"service.name": "t", "service.instance.id": "i"})
        # job and instance from the resource, the point's own attribute; none of the SDK's resource
        expected = {"__name__": "lab_test_pushes_total", "job": "t", "instance": "i", "http_route": "/x"}
        wait_until(
            lambda: series(otel, "lab_test_pushes_total"),
            [{**expected, "value": "3"}],
            30,  # its buffers show a new series within ~10 s of the first query for it
            "the pushed counter, under Prometheus 3's name and labels",
        )
        # units and types become suffixes as in Prometheus 3 ({request} is an annotation: none)
        assert series(otel, 'lab_test_active{job="t"}')[0]["value"] == "2"
        assert series(otel, 'lab_test_duration_seconds_count{job="t"}')[0]["value"] == "1"
        assert series(otel, 'lab_test_duration_seconds_sum{job="t"}')[0]["value"] == "0.25"
        assert series(otel, 'count({job="t", telemetry_sdk_language!=""})') == []

        # service.namespace joins the job, as in Prometheus 3; and what the receiver got is
        # queryable at once after the flush the test stack reads exact counts with
        push_once(
            otel + OTLP_RECEIVER_PATH,
            {"service.namespace": "ns", "service.name": "t", "service.instance.id": "i2"},
        )
        assert stack.otel_promql('lab_test_pushes_total{job="ns/t",instance="i2"}') == 3
    finally:
        if runner.process.poll() is None:
            runner.stop()
        runner.cleanup()
