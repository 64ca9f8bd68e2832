"""Saturation on the live stack: workers loaded with CPU and memory (the cpu_ms and leak_mb faults),
and each pipeline's reading of each process against what /proc says of it."""

import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pytest
import requests

from app import processes, signals
from app.faults import REFRESH_SECONDS
from app.otel import master_instance_id
from lab.backends import Graphite, OtlpReceiver, Prometheus
from lab.fault_control import FaultControl
from lab.polling import wait_for
from lab.queries import is_

from ..helpers import proc_cpu, proc_rss

LOAD = {"routes": {"/": {"cpu_ms": 25, "leak_mb": 2}}}
REQUESTS = 40
MEMORY_TOLERANCE = 2 << 20  # bytes: a sample is up to a scrape, flush or export old
CPU_TOLERANCE = 0.25  # seconds: idle workers still tick (gauge pushes, exports, scrapes)


def proc(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of a process, from /proc."""
    return proc_cpu(pid), proc_rss(pid)


class Load(NamedTuple):
    pids: dict[str, int]  # each gunicorn process by its label: "0", "1", ..., "master"
    before: dict[str, tuple[float, int]]  # /proc's figures of each before the load


@pytest.fixture(scope="module")
def load(stack) -> Load:
    """The app's processes after REQUESTS requests that burnt CPU and kept memory."""
    if stack.app_processes_dir is None:
        pytest.skip("comparing with /proc needs the native stack's processes on this machine")
    control = FaultControl(stack.app, stack.admin_token)
    pids = {name: process.pid for name, process in processes.live(str(stack.app_processes_dir)).items()}
    assert len(pids) == stack.app_settings["GUNICORN_WORKERS"] + 1, pids
    before = {name: proc(pid) for name, pid in pids.items()}
    control.replace(LOAD)
    time.sleep(2 * REFRESH_SECONDS)  # every worker has seen the new faults (app/faults.py's promise)
    try:
        with ThreadPoolExecutor(max_workers=stack.capacity) as pool:
            answers = list(pool.map(lambda _: requests.get(stack.app + "/", timeout=30), range(REQUESTS)))
        assert [answer.status_code for answer in answers] == [200] * REQUESTS
        assert set(processes.live(str(stack.app_processes_dir))) == set(pids)  # none recycled meanwhile
        yield Load(pids, before)
    finally:
        control.clear()  # the next request to each worker lets its leak go


def close_to_proc(read, pids: dict[str, int], what: str) -> None:
    """Poll `read()` ({label: (cpu, rss)}) until each process's figures are within the tolerances of
    /proc's; fail naming the figures last seen."""

    def compared():
        seen = read()
        truth = {name: proc(pid) for name, pid in pids.items()}
        return seen, truth

    def close(pair) -> bool:
        seen, truth = pair
        return set(seen) == set(truth) and all(
            abs(seen[name][0] - truth[name][0]) <= CPU_TOLERANCE
            and abs(seen[name][1] - truth[name][1]) <= MEMORY_TOLERANCE
            for name in truth
        )

    seen, truth = wait_for(compared, close, timeout=20, interval=0.5)
    assert close((seen, truth)), f"{what}: read {seen}, /proc {truth}"


def test_the_load_shows_in_proc(load):
    """The faults did what they say, so the comparisons below compare something."""
    workers = [name for name in load.pids if name != signals.MASTER]
    grew = {
        name: [b - a for a, b in zip(load.before[name], proc(load.pids[name]), strict=True)]
        for name in workers
    }
    assert sum(cpu for cpu, _ in grew.values()) >= REQUESTS * 0.025  # every request burnt 25 ms
    # and kept 2 MiB each, give or take what the workers freed of their own meanwhile (one run: 79.9 MiB)
    assert sum(rss for _, rss in grew.values()) >= 0.9 * (REQUESTS * 2 << 20)


def test_the_scrape_reads_each_worker_and_the_master_as_proc_does(stack, load):
    prometheus = Prometheus(stack.prometheus)
    job = is_("job", "app")

    def read():
        cpu = prometheus.by(f"{signals.PROCESS_CPU.name}{{{job}}}", signals.WORKER)
        rss = prometheus.by(f"{signals.PROCESS_MEMORY.name}{{{job}}}", signals.WORKER)
        return {name: (cpu[name], rss.get(name, 0)) for name in cpu}

    close_to_proc(read, load.pids, "Prometheus")


def test_statsd_pushes_each_worker_and_the_master_as_proc_does(stack, load):
    graphite = Graphite(stack.graphite)
    push = stack.push

    def label(series: str) -> str:
        worker = series.split(".")[-2]
        return worker.removeprefix("worker_")

    def read():
        since = time.time() - 60
        cpu = graphite.last(push.process_series(signals.STATSD_PROCESS_CPU), since)
        rss = graphite.last(push.process_series(signals.STATSD_PROCESS_MEMORY), since)
        by_rss = {label(series): value for series, value in rss.items()}
        return {label(series): (value, by_rss.get(label(series), 0)) for series, value in cpu.items()}

    close_to_proc(read, load.pids, "Graphite")


def test_otlp_pushes_each_worker_and_the_master_as_proc_does(stack, load):
    """Workers push under random instance ids: they are matched to /proc by their figures; the master
    under the id derived from its pid, in the worker of slot 0."""
    receiver = OtlpReceiver(stack.otel) if stack.otel_is_twin else Prometheus(stack.otel)
    job = is_("job", stack.app_settings["OTEL_SERVICE_NAME"])
    master = master_instance_id(load.pids[signals.MASTER])

    def read():
        fresh = f"[{4 * stack.export_seconds:g}s]"
        cpu = receiver.by(
            f"sum by (instance) (last_over_time({signals.OTEL_PROCESS_CPU.metric.name}{{{job}}}{fresh}))",
            "instance",
        )
        rss = receiver.by(
            f"last_over_time({signals.OTEL_PROCESS_MEMORY.metric.name}{{{job}}}{fresh})", "instance"
        )
        found = {instance: (cpu[instance], rss.get(instance, 0)) for instance in cpu}
        named = {signals.MASTER: found.pop(master)} if master in found else {}
        # the workers, paired with /proc's by resident memory: each holds its own leak
        truth = sorted((proc(pid)[1], name) for name, pid in load.pids.items() if name != signals.MASTER)
        for (_, name), figures in zip(truth, sorted(found.values(), key=lambda f: f[1]), strict=False):
            named[name] = figures
        return named if len(found) == len(truth) else {**named, "unmatched": (0, 0)}

    close_to_proc(read, load.pids, "OTLP receiver")
