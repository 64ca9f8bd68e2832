"""Each gunicorn worker's CPU, memory and open files, and the master's (app/processes.py): named by
slot, read from the live processes, the same figures /proc holds, bounded however often workers
recycle, pushed by StatsD and observed by OpenTelemetry."""

import os
from pathlib import Path

import psutil
import pytest
import requests
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from app import otel, processes, signals
from lab.polling import wait_for

from .helpers import (
    TICK,
    UdpListener,
    gunicorn,
    proc_cpu,
    proc_rss,
    samples,
    series_of,
    value,
    wait_for_workers,
)

FAST = {"DB_DELAY_MIN_SECONDS": "0", "DB_DELAY_MAX_SECONDS": "0", "STATSD_HOST": "127.0.0.1"}


def slot_pids(server) -> dict[str, int]:
    """worker label -> pid, from the files the workers and the master wrote."""
    return {name: process.pid for name, process in processes.live(str(server.multiproc)).items()}


def test_a_free_slot_is_the_lowest_no_live_worker_holds():
    assert processes.free_slot([]) == 0
    assert processes.free_slot([0, 1, 3]) == 2
    assert processes.free_slot([None, 1]) == 0  # a worker forked before the lab's hook had none


def test_a_released_slot_is_freed_only_by_the_worker_that_held_it(tmp_path):
    processes.claim(str(tmp_path), 0, os.getpid())
    processes.release(str(tmp_path), 0, 1)  # an older worker's exit, reaped after its successor claimed
    assert processes.live(str(tmp_path))["0"].pid == os.getpid()
    processes.release(str(tmp_path), 0, os.getpid())
    assert processes.live(str(tmp_path)) == {}


def test_a_pid_file_naming_no_live_process_is_not_listed(tmp_path):
    no_such_pid = int(Path("/proc/sys/kernel/pid_max").read_text())  # pids are below it
    processes.claim(str(tmp_path), 0, no_such_pid)
    processes.claim_master(str(tmp_path), os.getpid())
    assert set(processes.live(str(tmp_path))) == {signals.MASTER}


@pytest.mark.processes
def test_metrics_name_each_live_worker_by_slot_and_the_master_with_the_figures_proc_holds():
    with gunicorn(GUNICORN_WORKERS="2", **FAST) as server:
        wait_for_workers(server, 2)
        pids = slot_pids(server)
        assert set(pids) == {"0", "1", signals.MASTER}
        assert {pids["0"], pids["1"]} == server.workers()
        assert pids[signals.MASTER] == server.process.pid
        before = {name: proc_cpu(pid) for name, pid in pids.items()}
        scraped = server.scrape()
        after = {name: proc_cpu(pid) for name, pid in pids.items()}
        for name, pid in pids.items():
            cpu = value(scraped, signals.PROCESS_CPU.name, worker=name)
            assert before[name] - TICK <= cpu <= after[name] + TICK, name
            rss = value(scraped, signals.PROCESS_MEMORY.name, worker=name)
            assert abs(rss - proc_rss(pid)) <= 1 << 20, name  # the scraping worker grows a little
            fds = value(scraped, signals.PROCESS_OPEN_FDS.name, worker=name)
            assert abs(fds - len(os.listdir(f"/proc/{pid}/fd"))) <= 4, name
            assert fds >= 3
        # a gunicorn worker imports the app: tens of MB, as /proc says
        assert value(scraped, signals.PROCESS_MEMORY.name, worker="0") > 20 << 20


@pytest.mark.processes
def test_recycled_workers_keep_the_process_series_to_their_slots():
    recycles = 500
    # the scrape's pipeline only: a worker booted 500 times need not load the OpenTelemetry SDK each time
    with gunicorn(
        GUNICORN_WORKERS="2", GUNICORN_MAX_REQUESTS="1", LAB_METRICS="prometheus", **FAST
    ) as server:
        wait_for_workers(server, 2)
        seen = set()
        for _ in range(recycles):  # every request, a scrape too, recycles the worker that answered it
            response = requests.get(server.metrics_url, timeout=10)
            assert response.status_code == 200
            scraped = samples(response.text)
            seen |= {
                dict(labels)[signals.WORKER] for labels in series_of(scraped, signals.PROCESS_MEMORY.name)
            }
        # the last answer's worker is being replaced: wait until both slots name live workers again
        wait_for(
            lambda: slot_pids(server),
            lambda pids: (
                set(pids) - {signals.MASTER} == {"0", "1"} and {pids["0"], pids["1"]} == server.workers()
            ),
            timeout=20,
        )
        assert seen == {"0", "1", signals.MASTER}
        assert sorted(p.name for p in server.multiproc.glob("*.pid")) == [
            "master.pid",
            "worker-0.pid",
            "worker-1.pid",
        ]
        pids = slot_pids(server)
        assert {pids["0"], pids["1"]} == server.workers()
        assert value(server.scrape(), signals.PROCESS_MEMORY.name, worker="2") == 0  # no third slot


def gauges(lines, name: str) -> list[float]:
    """The values of one StatsD gauge, in the order they arrived."""
    return [float(line.split(":")[1].split("|")[0]) for line in lines if line.startswith(name + ":")]


@pytest.mark.processes
def test_statsd_gets_each_slot_and_the_master_as_absolute_gauges_and_zeros_when_a_worker_exits():
    with UdpListener() as statsd:
        env = {**FAST, "STATSD_PORT": str(statsd.port), "STATSD_GAUGE_INTERVAL": "0.1"}
        with gunicorn(GUNICORN_WORKERS="2", **env) as server:
            wait_for_workers(server, 2)
            pids = slot_pids(server)
            statsd.datagrams(wait=0.5, at_most=1)  # what the workers sent while starting
            # a second of pushes, every 0.1 s from each worker
            lines = [
                line for datagram in statsd.datagrams(wait=1.0, at_most=1) for line in datagram.split("\n")
            ]
            for name, worker in (("0", "worker_0"), ("1", "worker_1"), (signals.MASTER, signals.MASTER)):
                prefix = f"{signals.STATSD_PREFIX}.{signals.STATSD_PROCESS_MEMORY.format(worker=worker)}"
                rss = gauges(lines, prefix)
                assert rss, f"no {prefix} in {lines[:5]}"
                assert abs(rss[-1] - proc_rss(pids[name])) <= 1 << 20
                cpu = gauges(lines, prefix.replace("memory_rss_bytes", "cpu_seconds"))
                assert abs(cpu[-1] - proc_cpu(pids[name])) <= 0.1
        lines = [line for datagram in statsd.datagrams(wait=0.5, at_most=5) for line in datagram.split("\n")]
        for worker in ("worker_0", "worker_1"):
            memory = f"{signals.STATSD_PREFIX}.{signals.STATSD_PROCESS_MEMORY.format(worker=worker)}"
            assert gauges(lines, memory)[-1] == 0  # the stopped worker took its slot's figures out


def test_the_master_is_observed_with_the_names_the_instrumentation_gives_a_worker():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel.observe_process(provider, psutil.Process(os.getppid()))
    points = {
        metric.name: [(dict(point.attributes), point.value) for point in metric.data.data_points]
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    provider.shutdown()
    assert set(points) == {instrument.name for instrument in signals.OTEL_PROCESS_INSTRUMENTS}
    cpu = dict((attributes[signals.CPU_MODE], figure) for attributes, figure in points["process.cpu.time"])
    assert set(cpu) == {"user", "system"}
    assert abs(sum(cpu.values()) - proc_cpu(os.getppid())) <= 0.05
    ((_, rss),) = points[signals.OTEL_PROCESS_MEMORY.name]
    assert abs(rss - proc_rss(os.getppid())) <= 1 << 20


def test_the_master_instance_id_is_one_per_master():
    assert otel.master_instance_id(10) == otel.master_instance_id(10)
    assert otel.master_instance_id(10) != otel.master_instance_id(11)
    assert otel.master_instance_id(10).startswith("gunicorn-master-")
