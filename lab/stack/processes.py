"""The lab's one process supervisor: start a server, wait until it is ready, stop it.

The native runner, the benchmark, the StatsD daemon wrapper and the tests all
run servers the same way, so they do it through this module: start the
process with its output in a log file (or discarded), poll a readiness check
until it passes, failing as soon as the process exits (with the log's tail,
which says why) rather than at the timeout, and stop it with SIGTERM, then
SIGKILL once a timeout says it will not stop by itself. The readiness checks
look at the loopback only, where everything the lab runs binds.
"""

import ctypes
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from ..settings import LOOPBACK

POLL_SECONDS = 0.05  # a check costs a connection on the loopback: cheap next to a server's start

Check = Callable[[], bool]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """`command` run on one CPU (taskset), or as it is when `cpu` is None."""
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


class NotReady(RuntimeError):
    """A process exited before its readiness check passed, or the check timed out."""


class Process(subprocess.Popen):
    """A child process, started at once, its stdout and stderr appended to `log` (or discarded).

    A Popen, so callers keep `pid`, `poll()`, `send_signal()` and `wait()`; this
    adds what every caller needs around them: readiness, stopping, the log's tail
    and the children. `popen` takes Popen's other options (cwd, env, preexec_fn...).
    """

    def __init__(self, argv: list[str], *, name: str | None = None, log: Path | None = None, **popen):
        self.name = name or shlex.join(argv)
        self.log = log
        # Appended, not truncated: the native stack keeps its logs across restarts.
        output = open(log, "ab") if log is not None else subprocess.DEVNULL
        try:
            super().__init__(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, **popen)
        finally:
            if log is not None:
                output.close()  # the child has its own copy

    def wait_ready(self, ready: Check, timeout: float) -> None:
        """Return once `ready()` passes; raise NotReady as soon as the process exits, or after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.poll() is not None or time.monotonic() > deadline:
                raise NotReady(f"{self.name} did not start" + (f":\n{self.tail()}" if self.log else ""))
            time.sleep(POLL_SECONDS)

    def stop(self, timeout: float) -> int:
        """Stop it (see `stop_all`) and return its exit status: -SIGKILL says it had to be killed."""
        stop_all([self], timeout)
        return self.returncode

    def tail(self, lines: int = 20) -> str:
        """The last lines of its log: what a process that failed said last ("" without a log)."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def children(self) -> list[int]:
        """The pids of the processes it started (gunicorn's workers, the runner's services)."""
        try:
            return [
                int(pid) for pid in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            ]
        except FileNotFoundError:  # it has exited and been reaped
            return []


def stop_all(processes: Iterable[Process], timeout: float) -> None:
    """SIGTERM each, in the order given, then wait for each; SIGKILL one still running after `timeout` s.

    Every process is told first, so they shut down side by side, not one after
    the other; the order is for those that depend on each other (the native
    stack stops the last started first).
    """
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def die_with_parent() -> None:
    """A `preexec_fn`: the child gets SIGTERM when its parent dies, even of SIGKILL.

    Without it, a runner killed outright would leave its servers holding their ports.
    """
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def http_ok(url: str) -> Check:
    """A check: `url` answers 200 (a server that listens may still be booting: ask it)."""

    def check() -> bool:
        try:
            with urlopen(url, timeout=2) as response:
                return response.status == 200
        except (URLError, OSError):
            return False

    return check


def tcp_open(port: int, host: str = LOOPBACK) -> Check:
    """A check: something accepts connections on `port` of `host`, a loopback address (for servers
    without HTTP)."""

    def check() -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False

    return check


def log_says(log: Path, text: str, since: str) -> Check:
    """A check: the log holds `text` after the last `since` (what the process writes first at each
    start: a restarted one appends to the same log), for a server with no port to ask (collectd)."""

    def check() -> bool:
        try:
            written = log.read_text(errors="replace")
        except FileNotFoundError:
            return False
        start = written.rfind(since)
        return start >= 0 and text in written[start:]

    return check


def statsd_healthy(admin_port: int) -> Check:
    """A check: StatsD's admin interface answers "health: up" (its UDP port cannot be asked)."""

    def check() -> bool:
        try:
            with socket.create_connection((LOOPBACK, admin_port), timeout=1) as conn:
                conn.sendall(b"health\n")
                return b"health: up" in conn.recv(100)
        except OSError:
            return False

    return check
