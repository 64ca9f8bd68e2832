"""`make native` stops every process it started (on Ctrl-C, and when one dies),
and keeps its data across a restart."""

import os
import signal
import socket
from pathlib import Path

import requests

from ..helpers import wait_until
from .stack import NativeRunner

TCP_PORTS = (
    "APP_PORT",
    "WORKER_PORT",
    "PROMETHEUS_PORT",
    "GRAPHITE_PORT",
    "CARBON_PORT",
    "STATSD_ADMIN_PORT",
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
    # carbon, statsd, graphite-web, app, worker, prometheus (and loadgen)
    assert len(children) == 6 + runner.loadgen
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
        assert first.stop() == 0

        second.start()
        stack = second.stack()
        stack.started_at -= 3600  # Graphite: sum from well before the first start
        assert stack.promql(series) == 17
        assert stack.graphite_sum(target) == 17
    finally:
        for runner in (first, second):
            if getattr(runner, "process", None) is not None and runner.process.poll() is None:
                runner.stop()
        first.cleanup()
