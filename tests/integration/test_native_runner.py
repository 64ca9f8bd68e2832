"""`make native` stops every process it started: on Ctrl-C, and when one dies."""

import os
import signal
import socket
import time
from pathlib import Path

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


def assert_all_stopped(runner: NativeRunner, children: list[int]) -> None:
    assert len(children) == 6  # carbon, statsd, graphite-web, app, worker, prometheus
    assert [pid for pid in children if alive(pid)] == []
    assert [name for name in TCP_PORTS if listening(runner.ports[name])] == []


def test_ctrl_c_stops_every_service():
    runner = NativeRunner()
    try:
        runner.start()
        children = runner.children()
        assert [name for name in TCP_PORTS if not listening(runner.ports[name])] == []
        runner.process.send_signal(signal.SIGINT)
        assert runner.wait() == 0
        assert "native stack stopped\n" in runner.output
        assert_all_stopped(runner, children)
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
        time.sleep(0.1)
        assert_all_stopped(runner, children)
    finally:
        if runner.process.poll() is None:
            runner.stop()
        runner.cleanup()
