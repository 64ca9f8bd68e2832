"""A bounded PROMETHEUS_MULTIPROC_DIR: dead workers' files folded into one archive.

prometheus_client keeps one file per metric type per process, forever (its
issues #566, #411, #443): with worker recycling the directory, and every
scrape's time, grow without bound. Here gunicorn's master, in `child_exit`,
adds a dead worker's counters, histograms and summaries into `<type>_archive.db`
and removes its files, so the directory holds the live workers plus one
archive per type. See MULTIPROCESS.md beside this file for why it is safe.

The archive must be in the file format the collector reads. prometheus_client
writes and reads that format with its `mmap_dict` module and has no public API
for a file of one's own, so the archive is written with the same module.
"""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

ARCHIVED_TYPES = ("counter", "histogram", "summary")  # values that add up across processes
LOCK_FILE = ".scrape.lock"  # not *.db: the collector never reads it
HEADER_BYTES = 8  # of an MmapedDict file: bytes used (4), padding (4)


@contextmanager
def _locked(path: str, operation: int):
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)


def collect(path: str, *collectors: Collector) -> bytes:
    """Return one scrape summed over every live and dead worker, with `collectors` added."""
    # Shared: scrapes run side by side; only the archiving waits for them.
    with _locked(path, fcntl.LOCK_SH):
        registry = CollectorRegistry()
        for collector in (_ReadyFiles(path), *collectors):
            registry.register(collector)
        return generate_latest(registry)


class _ReadyFiles:
    """prometheus_client's MultiProcessCollector, over the files that hold a header.

    A booting worker creates its file empty, then sizes it (prometheus_client's
    MmapedDict): a scrape that lists the directory in between read 0 bytes and
    failed with a 500 (about one scrape in a thousand while workers recycle on
    a busy machine). Such a file holds no value yet: it is left for the next scrape.
    """

    def __init__(self, path: str):
        self._path = path

    def collect(self):
        files = []
        for entry in os.scandir(self._path):
            if entry.name.endswith(".db"):
                try:
                    if entry.stat().st_size >= HEADER_BYTES:
                        files.append(entry.path)
                except FileNotFoundError:  # a live gauge file, removed with its worker
                    continue
        return MultiProcessCollector.merge(files, accumulate=True)


def archive_dead_process(pid: int, path: str) -> None:
    """Fold a dead process's files into the archive, then drop its live gauges."""
    # Exclusive: a scrape between "added to the archive" and "file removed" would
    # count the worker twice, and one in the other order would lose it.
    with _locked(path, fcntl.LOCK_EX):
        for kind in ARCHIVED_TYPES:
            dead = Path(path, f"{kind}_{pid}.db")
            if not dead.exists():
                continue
            archive = MmapedDict(str(Path(path, f"{kind}_archive.db")))
            try:
                for key, value, timestamp, _ in list(MmapedDict.read_all_values_from_file(str(dead))):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            dead.unlink()
        mark_process_dead(pid, path)
