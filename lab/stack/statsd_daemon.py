"""The real StatsD daemon (npm's statsd, as the native stack runs it) on loopback,
without backends: for the benchmark and the tests, which read its counters
through its admin interface instead of waiting for a flush.
"""

import json
import re
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..settings import LOOPBACK, free_port
from .deps import STATSD_DAEMON_JS
from .processes import Process, statsd_healthy


class StatsdDaemon:
    """A running daemon: `port` takes the app's UDP pushes, `counters()` reads what it holds."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port(socket.SOCK_DGRAM)
        self.admin_port = free_port()
        self.process: Process | None = None
        self._config = Path(tempfile.mkdtemp(prefix="statsd-")) / "config.js"

    def start(self) -> "StatsdDaemon":
        self._config.write_text(
            json.dumps(
                {
                    "address": LOOPBACK,
                    "port": self.port,
                    "mgmt_address": LOOPBACK,
                    "mgmt_port": self.admin_port,
                    "backends": [],
                    # Nothing is flushed away while a test or a benchmark runs.
                    "flushInterval": 3_600_000,
                    "automaticConfigReload": False,
                }
            )
        )
        self.process = Process(
            ["node", str(STATSD_DAEMON_JS), str(self._config)], name=f"statsd on udp/{self.port}"
        )
        self.process.wait_ready(statsd_healthy(self.admin_port), timeout=10)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)

    def counters(self) -> dict[str, float]:
        """The counters received since the start (the admin interface's `counters`)."""
        return admin_counters(self.admin_port)


def admin_counters(admin_port: int) -> dict[str, float]:
    """The counters a StatsD daemon holds now (its admin interface's `counters`): since the start, or
    since its last flush when it flushes. Empty when it does not answer."""
    # The answer is a JavaScript object literal: { 'name': 12, ... }
    return {
        name: float(value)
        for name, value in re.findall(r"'([^']+)': ([\d.]+)", admin(admin_port, "counters"))
    }


def admin(admin_port: int, command: str) -> str:
    """A command's answer from a StatsD admin interface on the loopback ("" when none answers)."""
    try:
        with socket.create_connection((LOOPBACK, admin_port), timeout=2) as conn:
            conn.sendall(command.encode() + b"\n")
            answer = b""
            while not answer.endswith(b"END\n\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
            return answer.decode()
    except OSError:
        return ""


@contextmanager
def statsd_daemon(port: int | None = None):
    """Run a StatsD daemon for the duration of the block."""
    daemon = StatsdDaemon(port)
    try:
        # Inside the try: a daemon that fails to become healthy is stopped too.
        yield daemon.start()
    finally:
        daemon.stop()
