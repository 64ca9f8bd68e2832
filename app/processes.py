"""Each gunicorn worker's process, and the master's, named by slot rather than by pid.

In multiprocess mode prometheus_client exports no process metrics ("custom collectors do not
work (e.g. cpu and memory metrics)", its docs say): the scrape is answered by whichever worker
the request reached, about files the workers wrote. The lab reads the processes themselves, at
export time, with psutil.

A pid names a process once: a worker recycled by max_requests comes back with a new one, and
series named by pid would grow with every recycle. gunicorn's master gives each worker it forks
the lowest slot no live worker holds (`pre_fork`, app/gunicorn.conf.py), so a replacement takes
its predecessor's slot and the series stay `0 .. workers-1` plus the master. Each worker writes
its pid into `worker-<slot>.pid` beside the metric files once it runs (`claim`); the master
removes it when the worker exits (`release`), and writes its own pid into `master.pid`.

    live(path)          # {"0": psutil.Process, "1": ..., "master": ...}
    read(process)       # Reading(cpu_user=..., cpu_system=..., rss_bytes=..., open_fds=...)
"""

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import psutil

from .signals import MASTER

PID_FILE = "worker-{slot}.pid"
MASTER_PID_FILE = "master.pid"


class Reading(NamedTuple):
    """One process's figures, as the kernel counts them."""

    cpu_user: float  # seconds
    cpu_system: float  # seconds
    rss_bytes: int  # resident set: shared pages (the master's, copied on write) count in every worker
    open_fds: int


def free_slot(taken: Iterable[int | None]) -> int:
    """The lowest slot not in `taken` (the live workers')."""
    held = set(taken)
    slot = 0
    while slot in held:
        slot += 1
    return slot


def _write(path: Path, pid: int) -> None:
    # Atomically: a scrape reads the old pid or the new one, never half a number.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".pid-")
    with os.fdopen(fd, "w") as file:
        file.write(str(pid))
    os.replace(temporary, path)


def claim(directory: str, slot: int, pid: int) -> None:
    """Name `pid` as the process in `slot` (a worker, once it runs)."""
    _write(Path(directory, PID_FILE.format(slot=slot)), pid)


def claim_master(directory: str, pid: int) -> None:
    _write(Path(directory, MASTER_PID_FILE), pid)


def release(directory: str, slot: int, pid: int) -> None:
    """Forget the worker in `slot` if it is still `pid` (its replacement may have claimed it)."""
    path = Path(directory, PID_FILE.format(slot=slot))
    try:
        if path.read_text().strip() == str(pid):
            path.unlink()
    except FileNotFoundError:
        pass


def forget_all(directory: str) -> None:
    """Remove every slot's file (the master's start: the last run's workers are gone)."""
    for path in Path(directory).glob(PID_FILE.format(slot="*")):
        path.unlink(missing_ok=True)
    Path(directory, MASTER_PID_FILE).unlink(missing_ok=True)


def _process(path: Path) -> psutil.Process | None:
    try:
        process = psutil.Process(int(path.read_text()))
        # A pid reused by another program since: not ours. `is_running` compares start times.
        return process if process.is_running() and process.status() != psutil.STATUS_ZOMBIE else None
    except (FileNotFoundError, ValueError, psutil.Error):
        return None


def live(directory: str) -> dict[str, psutil.Process]:
    """The live workers by slot ("0", "1", ...) and the master ("master"), as far as each is known."""
    slots = {
        path.stem.removeprefix("worker-"): path for path in Path(directory).glob(PID_FILE.format(slot="*"))
    }
    named = [
        *((slot, slots[slot]) for slot in sorted(slots, key=int)),
        (MASTER, Path(directory, MASTER_PID_FILE)),
    ]
    found = {}
    for name, path in named:
        process = _process(path)
        if process is not None:
            found[name] = process
    return found


def read(process: psutil.Process) -> Reading | None:
    """The process's CPU, memory and open files now; None if it exited meanwhile."""
    try:
        with process.oneshot():
            cpu = process.cpu_times()
            return Reading(cpu.user, cpu.system, process.memory_info().rss, process.num_fds())
    except psutil.Error:
        return None
