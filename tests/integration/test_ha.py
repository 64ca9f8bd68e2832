"""Beyond one machine (`lab native --ha`: lab/stack/ha.py, the pull side, and ha_push.py, the push
side), on a stack of its own.

Two app instances counted exactly in every pipeline, per instance and summed; a Prometheus replica
killed under traffic while the long-term store keeps every request and a sample every scrape
interval; a page sent once by a cluster of three Alertmanagers fed by both replicas; a silence made
on one Alertmanager holding on the others. On the push side: every graphite-web node answering the
exact counts from the caches carbon's router chose; a carbon cache killed without a point lost; a
StatsD node killed, losing no more than the proxy's health check allows.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.signals import ROUTE, STATUS
from lab import traffic
from lab.backends import Alertmanager, AlertSink, Graphite, Prometheus
from lab.fault_control import FaultControl
from lab.polling import wait_for
from lab.queries import is_
from lab.settings import Ports
from lab.stack import ha, ha_push
from lab.stack.ha import peer_timeout_seconds
from lab.stack.native_config import whisper_dir

from ..helpers import ROOT, OtlpReceiver, wait_until
from .dashboards import eventually, panel_targets, prometheus_points, send_traffic, substitute
from .stack import APP_TEST_ENV, PAGE, NativeRunner, settled

LOOP = "http://127.0.0.1"
# remote_write's batch_send_deadline (Prometheus's default): how long a sample may wait in its queue
REMOTE_WRITE_DEADLINE_SECONDS = 5.0
SLACK_SECONDS = 5.0  # for a loaded machine: a request, a scrape or a send that runs late
INSTANCE = "instance"


@pytest.fixture(scope="module")
def runner():
    runner = NativeRunner(ha=True)
    try:
        runner.start()
        yield runner
        runner.stop()
    finally:
        if runner.process.poll() is None:
            runner.stop()
        runner.cleanup()


@pytest.fixture(scope="module")
def stack(runner):
    return runner.stack()


def url(runner, name: str) -> str:
    return f"{LOOP}:{runner.ports[name]}"


def apps(runner) -> dict[str, str]:
    """instance label -> URL of each app instance."""
    return {f"127.0.0.1:{runner.ports[name]}": url(runner, name) for name in ("APP_PORT", "APP_2_PORT")}


def replicas(runner) -> dict[str, str]:
    return {"a": url(runner, "PROMETHEUS_PORT"), "b": url(runner, "PROMETHEUS_2_PORT")}


def alertmanagers(runner) -> list[str]:
    return [url(runner, name) for name in ("ALERTMANAGER_PORT", "ALERTMANAGER_2_PORT", "ALERTMANAGER_3_PORT")]


def long_term_store(runner) -> str:
    return url(runner, "LONG_TERM_STORE_PORT")


def send(target: str, path: str, count: int, status: int) -> None:
    session = requests.Session()
    for _ in range(count):
        assert session.get(target + path, timeout=10).status_code == status


def test_two_instances_count_exactly_per_instance_and_summed_in_every_pipeline(runner, stack):
    """Each replica and the long-term store count each instance's requests; StatsD and OTLP, which
    both instances push to, count their sum."""
    sent = dict(zip(apps(runner), (12, 7), strict=True))
    pull, otel, push = stack.pull, stack.otel_queries, stack.push
    per_instance = {
        instance: pull.total(is_(ROUTE, "/"), is_(STATUS, "200"), is_(INSTANCE, instance))
        for instance in sent
    }
    backends = {**replicas(runner), "long-term store": long_term_store(runner)}
    otel_total = otel.total(is_(otel.names.route, "/"), is_(otel.names.status, "200"))
    statsd_total = push.requests("index", "GET", "200", per_second=False)

    second_receiver = OtlpReceiver(url(runner, "OTLP_RECEIVER_2_PORT"))

    def read():
        pulled = {
            (name, i): Prometheus(u).value(q) for name, u in backends.items() for i, q in per_instance.items()
        }
        # each worker exports to both OTLP receivers, replica a's and b's, by an exporter each
        pushed = (stack.otel_promql(otel_total), second_receiver.value(otel_total))
        return pulled, pushed, stack.graphite_sum(statsd_total)

    before_pull, before_otel, before_statsd = settled(read, stack)
    for instance, target in apps(runner).items():
        send(target, "/", sent[instance], 200)
    timeout = 10 * stack.settle_seconds()
    for (name, instance), before in before_pull.items():
        query = per_instance[instance]
        wait_until(
            lambda u=backends[name], q=query: Prometheus(u).value(q),
            before + sent[instance],
            timeout,
            f"{name}: {query}",
        )
    total = sum(sent.values())
    wait_until(lambda: read()[1], (before_otel[0] + total, before_otel[1] + total), timeout, otel_total)
    wait_until(lambda: stack.graphite_sum(statsd_total), before_statsd + total, timeout, statsd_total)
    # and stay there: nothing counted twice once both copies have landed
    time.sleep(stack.settle_seconds())
    after_pull, after_otel, after_statsd = read()
    assert after_pull == {key: before + sent[key[1]] for key, before in before_pull.items()}
    assert after_otel == (before_otel[0] + total, before_otel[1] + total)
    assert after_statsd == before_statsd + total
    # StatsD's in-flight gauge, the sum of both instances' workers' deltas, rises and comes back to 0
    with ThreadPoolExecutor(max_workers=6) as pool:
        targets = [target + "/database/" for target in apps(runner).values()] * 3  # 3 at once on each
        slow = [pool.submit(requests.get, target, timeout=10) for target in targets]
        assert all(future.result().status_code == 200 for future in slow)
    wait_until(lambda: stack.graphite_last(push.in_flight_series()), 0.0, timeout, "StatsD in flight")


def test_killing_a_replica_loses_no_request_and_no_scrape_in_the_long_term_store(runner, stack):
    instance, target = next(iter(apps(runner).items()))
    query = stack.pull.total(is_(ROUTE, "/"), is_(STATUS, "200"), is_(INSTANCE, instance))
    store = Prometheus(long_term_store(runner))
    before = settled(lambda: store.value(query), stack)
    sent = 0

    def traffic():
        nonlocal sent
        session = requests.Session()
        deadline = time.monotonic() + 8 * stack.scrape_seconds + 3
        while time.monotonic() < deadline:
            assert session.get(target + "/", timeout=10).status_code == 200
            sent += 1
            time.sleep(0.05)

    started = time.time()
    sender = threading.Thread(target=traffic)
    sender.start()
    time.sleep(2 * stack.scrape_seconds)
    killed = runner.pid("prometheus-a")
    os.kill(killed, signal.SIGKILL)
    sender.join()
    wait_until(
        lambda: runner.pid("prometheus-a") != killed, True, 30, "the runner never restarted prometheus-a"
    )
    assert any(f"prometheus-a (pid {killed}) exited with -9; restarting it" in line for line in runner.output)
    timeout = 10 * stack.settle_seconds()
    wait_until(lambda: store.value(query), before + sent, timeout, query)
    # Every scrape interval that replica b has a sample in, the store has one in: killing a lost
    # nothing b scraped (at the tests' 1 s scrape, a loaded machine can make b miss one itself).
    series = query.removeprefix("sum(").removesuffix(")")
    ended = time.time()
    interval = round(stack.scrape_seconds * 1000)  # ms, as both engines keep timestamps
    # The store keeps the last sample of each interval (k-1, k] of -dedup.minScrapeInterval, counted
    # from 0 (VictoriaMetrics' lib/storage/dedup.go): both sides are bucketed by that rule, and the
    # intervals wholly inside [started, ended] compared, read with an interval to spare on each side.
    whole = set(range(-(-round(started * 1000) // interval) + 1, round(ended * 1000) // interval + 1))

    spare = stack.scrape_seconds

    def bucket(milliseconds: int) -> int:
        return -(-milliseconds // interval)

    def missing() -> tuple[set[int], set[int]]:
        export = requests.get(
            f"{long_term_store(runner)}/api/v1/export",
            params={"match[]": series, "start": started - spare, "end": ended + spare},
            timeout=10,
        )
        stored = {bucket(t) for line in export.text.splitlines() for t in json.loads(line)["timestamps"]}
        range_query = {"query": f"{series}[{int(ended - started) + 2}s]", "time": ended}
        answer = requests.get(f"{replicas(runner)['b']}/api/v1/query", params=range_query, timeout=10).json()
        values = [point for result in answer["data"]["result"] for point in result["values"]]
        inside = {bucket(round(float(t) * 1000)) for t, _ in values} & whole
        return inside, inside - stored

    # the replicas' last batches land within their remote-write deadline, a loaded machine's later
    deadline = time.monotonic() + 3 * (REMOTE_WRITE_DEADLINE_SECONDS + stack.scrape_seconds)
    inside, lost = missing()
    while lost and time.monotonic() < deadline:
        time.sleep(stack.scrape_seconds)
        inside, lost = missing()
    assert inside, "replica b has no sample inside the kill's window"
    assert not lost, f"the store has no sample in {len(lost)} of the {len(inside)} intervals b scraped"
    # once the replica is back, its copy deduplicates with b's: still exactly what was sent
    time.sleep(3 * stack.settle_seconds())
    assert store.value(query) == before + sent


def test_a_frozen_otlp_receiver_holds_up_neither_the_other_nor_its_own_counts(runner, stack):
    """Each worker exports to each receiver by a reader and a thread of its own (app/otel.py): while
    replica b's receiver answers nothing (SIGSTOP: a machine that hangs), replica a's gets every
    request at the workers' next exports; once b's answers again, it has every count too, since each
    export carries the totals so far (cumulative temporality): it lost points, not requests."""
    otel = stack.otel_queries
    query = otel.total(is_(otel.names.route, "/"), is_(otel.names.status, "200"))
    first = OtlpReceiver(url(runner, "OTLP_RECEIVER_PORT"))
    second = OtlpReceiver(url(runner, "OTLP_RECEIVER_2_PORT"))
    before_first, before_second = settled(lambda: (first.value(query), second.value(query)), stack)
    sent = dict(zip(apps(runner).values(), (6, 4), strict=True))
    total = sum(sent.values())
    timeout = 10 * stack.settle_seconds()
    frozen = runner.pid("otlp-receiver-2")
    os.kill(frozen, signal.SIGSTOP)
    try:
        for target, count in sent.items():
            send(target, "/", count, 200)
        wait_until(
            lambda: first.value(query), before_first + total, timeout, f"a's receiver, b's frozen: {query}"
        )
    finally:
        os.kill(frozen, signal.SIGCONT)
    both = (before_first + total, before_second + total)
    wait_until(lambda: (first.value(query), second.value(query)), both, timeout, f"both receivers: {query}")
    time.sleep(stack.settle_seconds())  # and nothing counted twice by the exports that waited
    assert (first.value(query), second.value(query)) == both
    assert runner.pid("otlp-receiver-2") == frozen  # frozen, not dead: the runner left it alone


def test_a_silence_made_on_one_alertmanager_holds_on_the_others(runner):
    first, *others = [Alertmanager(u) for u in alertmanagers(runner)]
    assert all(len(am.peers()) == 3 for am in [first, *others])  # one cluster of three
    silence = first.silence(10, "integration test: gossip", alertname="NoSuchAlert")
    try:
        deadline = time.monotonic() + 5
        while True:
            seen = [any(s["id"] == silence for s in other.silences()) for other in others]
            if all(seen):
                break
            assert time.monotonic() < deadline, (
                f"the silence reached {seen} of the other Alertmanagers in 5 s"
            )
            time.sleep(0.1)
    finally:
        first.expire(silence)


LATENCY_PAGE = "LatencySLOFastBurn"
SLOW_MS = 400  # over the latency SLO's 300 ms: every request to / counts against it


def notifications(stack, alert: str, since: float) -> list[dict]:
    """The sink's firing notifications of `alert` since `since`."""
    return [
        item
        for item in AlertSink(stack.alert_sink).notifications(since)
        if any(a["labels"]["alertname"] == alert and a["status"] == "firing" for a in item["alerts"])
    ]


def traffic_until_notified(stack, alert: str, target: str, since: float, within: float) -> float:
    """Requests to `target` (its fault is on) until the sink has `alert` since `since`; when it came."""
    deadline = time.monotonic() + within
    while not (found := notifications(stack, alert, since)):
        assert time.monotonic() < deadline, f"no {alert} at the sink {within:.0f} s after the fault"
        traffic.send(target + "/", 10, 1.0)
    return found[0]["received_at"]


def test_a_page_reaches_the_sink_once_from_two_replicas_and_three_alertmanagers(runner, stack):
    """Both replicas fire the page to all three Alertmanagers: one notification. With the first
    Alertmanager frozen (SIGSTOP: a machine that stops answering), a new page (the latency SLO's)
    still arrives once, sent by a later peer after its --cluster.peer-timeout."""
    app_1 = next(iter(apps(runner).values()))
    faults = FaultControl(app_1, stack.admin_token)
    group_wait, _ = stack.route_timings("page")
    peer_timeout = peer_timeout_seconds(stack.scrape_seconds)
    # long enough for the third peer in line to have sent, had it not seen the others' notification
    quiet = group_wait + 2 * peer_timeout + 3 * stack.scrape_seconds
    frozen = runner.pid("alertmanager-1")
    try:
        injected = time.time()
        faults.replace({"routes": {"/": {"error_rate": 1}}})
        traffic_until_notified(stack, PAGE, app_1, injected, 90)
        for replica in replicas(runner).values():
            assert Prometheus(replica).value(f'ALERTS{{alertname="{PAGE}",alertstate="firing"}}') == 1
        time.sleep(quiet)
        assert len(notifications(stack, PAGE, injected)) == 1

        os.kill(frozen, signal.SIGSTOP)
        again = time.time()
        faults.replace({"routes": {"/": {"latency_ms": SLOW_MS}}})
        bound = stack.firing_seconds(LATENCY_PAGE) + group_wait + 2 * peer_timeout + SLACK_SECONDS
        received = traffic_until_notified(stack, LATENCY_PAGE, app_1, again, bound + 60)
        assert received - again <= bound
        time.sleep(quiet)
        assert len(notifications(stack, LATENCY_PAGE, again)) == 1
    finally:
        os.kill(frozen, signal.SIGCONT)
        faults.clear()


def test_the_pull_dashboards_read_from_replica_b_and_the_store_as_from_replica_a(runner, stack):
    """What the pull dashboards' `datasource` variable offers in the overlay (lab/stack/ha.py's
    SCRAPE_DATASOURCES, beside replica a): every query of their scrape panels returns data from each,
    as Grafana sends it. The store answers them in VictoriaMetrics's PromQL dialect (MetricsQL)."""
    started = time.time()
    send_traffic(stack)  # twice, a scrape apart: rate() sees no increase in a series' first sample
    first = stack.pull.total(is_(ROUTE, "/database/"))
    offered = {**{f"replica {r}": u for r, u in replicas(runner).items()}, "store": long_term_store(runner)}
    for name, address in offered.items():
        eventually(stack, lambda a=address: Prometheus(a).value(first) >= 6, f"{name} never saw: {first}")
    send_traffic(stack)
    scraped = {}  # query as sent -> where it is shown
    for param in panel_targets():
        board, panel, target, variables = param.values
        if target["datasource"]["uid"] == "prometheus":
            scraped.setdefault(
                substitute(target["expr"], variables, stack, "prometheus"), f"{board} / {panel}"
            )
    assert len(scraped) >= 15  # the pull dashboards' 39 scrape targets are 17 distinct queries
    for name, address in offered.items():
        for query, where in scraped.items():
            read = lambda a=address, q=query: prometheus_points(stack, a, q, started - 5)  # noqa: E731
            eventually(stack, read, f"{name}: no data for {where}: {query}")


# The push side beyond one machine (lab/stack/ha_push.py): a StatsD proxy before two nodes, a
# carbon-relay before three carbon caches (each series on two), three graphite-webs.
GRAPHITE_WEBS = ("GRAPHITE_PORT", "GRAPHITE_2_PORT", "GRAPHITE_3_PORT")


def graphite_nodes(runner) -> list[Graphite]:
    return [Graphite(url(runner, name)) for name in GRAPHITE_WEBS]


# path -> (StatsD endpoint, status): a route and status each, one carbon series each
MIX = {"/": ("index", 200), "/error/": ("error", 500), "/no/such/page": ("unmatched", 404)}


def mix_series(stack) -> dict[str, str]:
    """path -> the carbon series of its requests' counts (no glob: one series each)."""
    series = {
        path: stack.push.requests(endpoint, "GET", str(status), per_second=False)
        for path, (endpoint, status) in MIX.items()
    }
    assert not any("*" in target or "{" in target for target in series.values())
    return series


def counted_by_every_node(runner, stack, targets: list[str]) -> dict[str, tuple[float, ...]]:
    """target -> what each graphite-web answers for the sum of its points since the stack started."""
    nodes = graphite_nodes(runner)
    return {target: tuple(node.total(target, stack.started_at - 60) for node in nodes) for target in targets}


def plus(counted: dict[str, tuple[float, ...]], added: dict[str, int]) -> dict[str, tuple[float, ...]]:
    """Every node's count of each target, once it has `added[target]` more (from one node's, all equal)."""
    for target, counts in counted.items():
        assert len(set(counts)) == 1, f"the nodes disagree on {target}: {counts}"
    return {target: (counts[0] + added[target],) * len(counts) for target, counts in counted.items()}


def caches_holding(runner, series: str) -> list[int]:
    """The graphite nodes (0, 1, 2) whose carbon cache has written `series` to its whisper file."""
    relative = series.replace(".", "/") + ".wsp"
    nodes = range(len(ha_push.GRAPHITE_HOSTS))
    return [i for i in nodes if (whisper_dir(ha_push.node_dir(Path(runner.data_dir), i)) / relative).exists()]


def relay_conf(runner) -> Path:
    return ha_push.relay_conf(Path(runner.data_dir))


class Sender:
    """The mix to both app instances, a request every 50 ms, in a thread; when each was answered."""

    def __init__(self, runner, paths=tuple(MIX)):
        self.targets = list(apps(runner).values())
        self.paths = paths
        self.answered: dict[str, list[float]] = {path: [] for path in paths}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._send)

    def _send(self):
        session = requests.Session()
        while not self.stopping.is_set():
            for target in self.targets:
                for path in self.paths:
                    assert session.get(target + path, timeout=10).status_code == MIX[path][1]
                    self.answered[path].append(time.time())
                    time.sleep(0.05)

    def __enter__(self) -> "Sender":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()

    def sent(self, path: str) -> int:
        return len(self.answered[path])

    def within(self, path: str, *windows: tuple[float, float]) -> int:
        """The requests to `path` answered in any of the (start, end) windows."""
        return sum(any(start <= t <= end for start, end in windows) for t in self.answered[path])


def test_every_graphite_node_answers_for_the_cluster_from_the_two_caches_the_relay_chose(runner, stack):
    """Both apps send StatsD to the proxy; the nodes flush to carbon-relay, which writes each series
    to two of the three caches, those carbon's consistent-hashing router names; each graphite-web,
    the third included, answers the exact count of each route and status (its own whisper files and
    its peers')."""
    series = mix_series(stack)
    targets = list(series.values())
    before = settled(lambda: counted_by_every_node(runner, stack, targets), stack)
    counts = dict(zip(apps(runner).values(), (9, 5), strict=True))
    added = {target: 0 for target in targets}
    for app, count in counts.items():
        for path, (_, status) in MIX.items():
            send(app, path, count, status)
            added[series[path]] += count
    timeout = 10 * stack.settle_seconds()
    wait_until(lambda: counted_by_every_node(runner, stack, targets), plus(before, added), timeout, "the mix")
    chosen = ha_push.carbon_hosts_of(relay_conf(runner), targets)
    for target in targets:
        assert len(chosen[target]) == ha_push.replication_factor() == 2, target
        # on disk where carbon's router says, and only there: the third node answered from its peers
        holders = [ha_push.GRAPHITE_HOSTS[i] for i in caches_holding(runner, target)]
        assert holders == sorted(chosen[target]), target


def test_a_killed_carbon_cache_loses_no_point_every_node_answers_the_exact_count(runner, stack):
    """SIGKILL a cache holding the index series while the mix flows: the relay queues what it would
    have sent it, the copies on the other caches are whole, and every graphite-web merges the copies
    it finds (REMOTE_STORE_MERGE_RESULTS): the exact count of every series, from every node, the
    killed one's included."""
    series = mix_series(stack)
    targets = list(series.values())
    before = settled(lambda: counted_by_every_node(runner, stack, targets), stack)
    service = ha_push.cache_of(relay_conf(runner), series["/"])
    with Sender(runner) as sender:
        time.sleep(2 * stack.flush_seconds)
        killed = runner.pid(service)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: runner.pid(service) != killed, True, 30, f"the runner never restarted {service}")
        time.sleep(2 * stack.flush_seconds)
    assert any(f"{service} (pid {killed}) exited with -9; restarting it" in line for line in runner.output)
    expected = plus(before, {series[path]: sender.sent(path) for path in MIX})
    timeout = 10 * stack.settle_seconds()
    wait_until(lambda: counted_by_every_node(runner, stack, targets), expected, timeout, "the mix")
    time.sleep(stack.settle_seconds())  # and nothing counted twice by the relay's queued sends
    assert counted_by_every_node(runner, stack, targets) == expected


def statsd_admins(runner) -> dict[str, int]:
    """Each StatsD node's service name -> its admin port, on the runner's ports."""
    return ha.Topology(Ports.from_env(runner.ports), ha.HaPorts.from_env(runner.ports)).statsd_admins


def holding(runner, key: str) -> list[str]:
    return ha_push.nodes_holding(statsd_admins(runner), key)


def test_a_killed_statsd_node_loses_at_most_what_it_held_and_the_proxy_moves_its_metrics(runner, stack):
    """SIGKILL the StatsD node the proxy sends the index counter to: what it held since its last
    flush, and what reached it until the proxy's health check took it out of the ring (within a
    checkInterval: proxy.js checks every node that often), are lost (UDP); nothing more, and nothing
    is counted twice. The proxy sends the counter to the other node meanwhile, and back once the
    runner has restarted it; then every request counts again, exactly."""
    series = mix_series(stack)["/"]
    key = series.removeprefix("stats_counts.")  # as the app sends it, and the nodes hold it
    before = settled(lambda: counted_by_every_node(runner, stack, [series]), stack)
    check, flush = ha_push.check_interval_seconds(), stack.flush_seconds
    with Sender(runner, paths=("/",)) as sender:
        time.sleep(3 * flush)  # traffic outside the windows at risk, before and after
        # read while it holds the key: a node's counters are emptied at every flush
        nodes = wait_for(lambda: holding(runner, key), lambda held: len(held) == 1, 10)
        assert len(nodes) == 1, f"no one StatsD node holding {key}: {nodes}"
        (node,) = nodes
        (other,) = set(statsd_admins(runner)) - {node}
        killed = runner.pid(node)
        os.kill(killed, signal.SIGKILL)
        kill = time.time()
        wait_until(lambda: holding(runner, key), [other], 10 * check, f"the proxy moving {key} to {other}")
        moved = time.time()
        wait_until(lambda: runner.pid(node) != killed, True, 30, f"the runner never restarted {node}")
        wait_until(lambda: holding(runner, key), [node], 30, f"the proxy moving {key} back to {node}")
        back = time.time()
        time.sleep(4 * flush)
    # out of the ring within a health check (the kill refuses the next check's connection at once)
    assert moved - kill <= check + SLACK_SECONDS
    timeout = 10 * stack.settle_seconds()
    counted = settled(lambda: counted_by_every_node(runner, stack, [series]), stack, timeout)
    assert len(set(counted[series])) == 1, counted
    lost = before[series][0] + sender.sent("/") - counted[series][0]
    # held by the killed node (a flush), sent to it until the proxy saw it dead; and on each move, the
    # two nodes' flushes of the series landing in the same whisper second, the later one kept (a
    # flush each side); `late` for a loaded machine's flush
    late = 1.5
    at_risk = sender.within(
        "/",
        (kill - 2 * flush - late, moved + late),
        (back - check - 2 * flush - late, back + flush + late),
    )
    assert 0 <= lost <= at_risk, f"lost {lost} of {sender.sent('/')}; {at_risk} at risk"
    # the ring whole again: every request counts
    send(next(iter(apps(runner).values())), "/", 11, 200)
    wait_until(
        lambda: counted_by_every_node(runner, stack, [series]), plus(counted, {series: 11}), timeout, series
    )


def test_the_node_failure_run_kills_a_node_of_each_tier_at_once_and_tables_each_view(runner, stack, tmp_path):
    """`lab experiment --node-failures` as a user runs it against `make native-ha`: Prometheus replica a,
    the StatsD node and a carbon cache on `/`'s path and the OTLP receiver killed at once under
    traffic. The pull side read from the store and the OTLP push lose nothing (cumulative counters and
    totals: the killed replica and receiver too, once back); the killed ones' series have a gap the
    others do not; StatsD loses what the dead node held, not everything."""
    seconds, rate = 9, 20
    command = [sys.executable, "-m", "lab", "experiment", "--node-failures", "--data-dir", runner.data_dir]
    command += ["--phase-seconds", str(seconds), "--rate", str(rate), "--out", str(tmp_path)]
    env = {**os.environ, **runner.ports, **APP_TEST_ENV}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    rows = {row["view"]: row for row in result["rows"]}
    assert set(result["killed"]) == {"prometheus-a", "otlp-receiver"} | {
        name for name in result["killed"] if name.startswith(("statsd-", "carbon-cache-"))
    }
    assert len(result["killed"]) == 4
    assert all(result["restarted"][name] != pid for name, pid in result["killed"].items())
    assert {row["truth"] for row in rows.values()} == {seconds * rate}  # every request answered 200
    for view in ("Prometheus replica a", "long-term store", "OTLP receiver", "OTLP receiver 2"):
        assert rows[view]["lost"] == 0 and rows[view]["whole_after"] is not None, rows[view]
    # the killed replica and receiver were dead for the runner's restart delay at least; the views
    # that kept a live copy have a shorter gap (a loaded machine's late scrape or export, not a death)
    for killed, kept in (("Prometheus replica a", "long-term store"), ("OTLP receiver", "OTLP receiver 2")):
        gaps = rows[killed]["longest_gap"], rows[kept]["longest_gap"]
        assert gaps[0] >= ha.RESTART_SECONDS and gaps[0] > gaps[1], (killed, kept, gaps)
    graphite = rows["Graphite cluster (graphite-web 1)"]
    assert 0 <= graphite["lost"] < graphite["truth"] / 2, graphite
    text = (tmp_path / "node-failures.md").read_text()
    assert all(f"| {view} |" in text for view in rows)
    assert done.stdout.startswith(text)
