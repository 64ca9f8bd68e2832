"""The host tier, pulled and pushed: node_exporter scraped by Prometheus and collectd's write_graphite
in Graphite read the same machine, and agree with /proc where the truth is exact."""

import os
import time
from pathlib import Path

import pytest

from lab.backends import Graphite, Prometheus
from lab.host import COLLECTD_CPU, COLLECTD_MEMORY, NODE_CPU, CollectdQueries, NodeQueries
from lab.polling import wait_for
from lab.queries import is_


def meminfo(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/meminfo")


@pytest.fixture(scope="module")
def native(stack):
    if stack.data_dir is None:
        pytest.skip("comparing with /proc needs the stack on this machine (natively)")
    return stack


def test_node_exporter_reads_this_machines_memory_and_cores(native):
    prometheus, node = Prometheus(native.prometheus), NodeQueries(window=native.pull.window)
    total = wait_for(lambda: prometheus.value(node.memory_total()), bool, timeout=20)
    assert total == meminfo("MemTotal")  # exact: the kernel's own figure, scraped
    cores = prometheus.value(f"count({node.select(NODE_CPU, is_('mode', 'idle'))})")
    assert cores == os.cpu_count()

    # memory in use moves (other tests start and stop servers): polled until a scrape agrees with /proc
    def off_by() -> float:
        return abs(prometheus.value(node.memory_used()) - (meminfo("MemTotal") - meminfo("MemAvailable")))

    assert wait_for(off_by, lambda off: off < 64 << 20, timeout=30, interval=0.5) < 64 << 20
    assert 0 < prometheus.value(node.memory_used()) < total


def test_collectd_pushes_the_same_machines_memory_in_states_that_add_up_to_it(native):
    graphite, collectd = Graphite(native.graphite), CollectdQueries()

    def states() -> dict[float, float]:
        # each state's point of one timestamp: collectd reads them together
        target = collectd.series(COLLECTD_MEMORY, kind="*")
        points = {}
        for when, value in graphite.points(target, time.time() - 60):
            points.setdefault(when, []).append(value)
        return {when: sum(values) for when, values in points.items() if len(values) == 6}

    seen = wait_for(states, bool, timeout=30)
    assert seen, "no timestamp with all six memory states from collectd"
    assert set(seen.values()) == {meminfo("MemTotal")}  # exact, at every point


def test_collectd_cpu_states_add_up_to_the_whole_machine(native):
    graphite, collectd = Graphite(native.graphite), CollectdQueries()

    def percent_by_time() -> dict[float, float]:
        points = {}
        for when, value in graphite.points(collectd.series(COLLECTD_CPU, state="*"), time.time() - 60):
            points[when] = points.get(when, 0) + value
        return points

    sums = wait_for(percent_by_time, lambda found: len(found) >= 2, timeout=30)
    assert len(sums) >= 2
    assert all(abs(total - 100) < 1 for total in list(sums.values())[:-1]), sums  # the last may be partial


def test_the_host_queries_return_data_in_both_backends(native):
    """Every query the dashboards' host panels draw (lab/host.py), in each backend."""
    prometheus, graphite = Prometheus(native.prometheus), Graphite(native.graphite)
    node, collectd = NodeQueries(window=native.pull.window), CollectdQueries()
    promql = [node.cpu_busy(), node.memory_used(), node.disk_bytes("read"), node.disk_bytes("written")]
    promql += [node.network_bytes("received"), node.network_bytes("sent"), node.load1()]
    for query in promql:
        found = wait_for(lambda q=query: prometheus.by(q, "instance"), bool, timeout=30)
        assert found and all(value >= 0 for value in found.values()), query
    targets = [collectd.cpu_busy(), collectd.memory_used(), collectd.disk_bytes("read")]
    targets += [collectd.disk_bytes("written"), collectd.network_bytes("received"), collectd.load1()]
    for target in targets:
        found = wait_for(lambda t=target: graphite.last(t, time.time() - 60), bool, timeout=30)
        assert list(found) == ["lab-host"], target
        assert all(value >= 0 for value in found.values()), target
    busy = graphite.last(collectd.cpu_busy(), time.time() - 60)["lab-host"]
    assert 0 <= busy <= 1
