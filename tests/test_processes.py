"""lab/stack/processes.py: start a process, wait until it is ready, stop it, read its log."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from lab.settings import free_port
from lab.stack.processes import NotReady, Process, http_ok, tcp_open

pytestmark = pytest.mark.processes  # every test here starts processes


def python(code: str, tmp_path, name: str) -> Process:
    return Process([sys.executable, "-c", code], name=name, log=tmp_path / f"{name}.log")


def test_a_process_that_exits_before_it_is_ready_fails_at_once_with_its_log_tail(tmp_path):
    code = "print('no such config file: lab.yml', flush=True); raise SystemExit(2)"
    broken = python(code, tmp_path, "broken")
    started = time.monotonic()
    with pytest.raises(NotReady) as failure:
        broken.wait_ready(lambda: False, timeout=30)
    assert time.monotonic() - started < 10  # the exit, not the timeout, ended the wait
    assert str(failure.value) == "broken did not start:\nno such config file: lab.yml"
    assert broken.returncode == 2


def test_a_process_that_never_gets_ready_fails_after_the_timeout(tmp_path):
    stuck = python("import time; time.sleep(30)", tmp_path, "stuck")
    try:
        with pytest.raises(NotReady, match="stuck did not start"):
            stuck.wait_ready(lambda: False, timeout=0.3)
        assert stuck.poll() is None  # the caller decides when to stop it
    finally:
        stuck.stop(timeout=5)


def test_the_ready_check_passes_once_the_server_answers(tmp_path):
    port = free_port()
    assert not tcp_open(port)()
    server = Process(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        name="http.server",
        log=tmp_path / "server.log",
        cwd=tmp_path,
    )
    try:
        server.wait_ready(http_ok(f"http://127.0.0.1:{port}/"), timeout=30)
        assert tcp_open(port)()
        assert server.poll() is None
    finally:
        assert server.stop(timeout=5) == -signal.SIGTERM  # SIGTERM was enough
    assert not tcp_open(port)()
    assert not http_ok(f"http://127.0.0.1:{port}/")()


def test_stop_kills_a_process_that_ignores_sigterm_once_the_timeout_passes(tmp_path):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(30)"
    )
    stubborn = python(code, tmp_path, "stubborn")
    stubborn.wait_ready(lambda: "ignoring" in stubborn.tail(), timeout=30)  # its handler is in place
    started = time.monotonic()
    assert stubborn.stop(timeout=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5


def test_children_are_the_processes_it_started(tmp_path):
    code = (
        "import subprocess, time; subprocess.Popen(['sleep', '30']); "
        "print('started', flush=True); time.sleep(30)"
    )
    parent = python(code, tmp_path, "parent")
    try:
        parent.wait_ready(lambda: "started" in parent.tail(), timeout=30)
        (child,) = parent.children()
        assert Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        os.kill(child, signal.SIGTERM)
    finally:
        parent.stop(timeout=5)
    assert parent.children() == []
