"""The pull side beyond one machine (`lab native --ha`, lab/stack/ha.py), on a stack of its own.

Two app instances counted exactly in every pipeline, per instance and summed; a Prometheus replica
killed under traffic while the long-term store keeps every request and a sample every scrape
interval; a page sent once by a cluster of three Alertmanagers fed by both replicas; a silence made
on one Alertmanager holding on the others.
"""

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app.signals import ROUTE, STATUS
from lab import traffic
from lab.backends import Alertmanager, AlertSink, Prometheus
from lab.fault_control import FaultControl
from lab.queries import is_
from lab.stack.ha import peer_timeout_seconds

from ..helpers import OtlpReceiver, wait_until
from .stack import PAGE, NativeRunner, settled

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
    time.sleep(REMOTE_WRITE_DEADLINE_SECONDS + stack.scrape_seconds)  # the replicas' last batches land
    interval = stack.scrape_seconds
    # The store keeps the last sample of each interval, which may lie past either end of an interval
    # cut by [started, ended]: the whole intervals in between are compared, read with an interval
    # to spare on each side.
    export = requests.get(
        f"{long_term_store(runner)}/api/v1/export",
        params={"match[]": series, "start": started - interval, "end": ended + interval},
        timeout=10,
    )
    stored = [t / 1000 for line in export.text.splitlines() for t in json.loads(line)["timestamps"]]
    range_query = {"query": f"{series}[{int(ended - started) + 2}s]", "time": ended}
    answer = requests.get(f"{replicas(runner)['b']}/api/v1/query", params=range_query, timeout=10).json()
    scraped = [float(t) for result in answer["data"]["result"] for t, _ in result["values"]]
    whole = range(int(started // interval) + 1, int(ended // interval))  # the intervals inside
    assert scraped and stored
    inside = {int(t // interval) for t in scraped} & set(whole)
    missing = inside - {int(t // interval) for t in stored}
    assert not missing, f"the store has no sample in {len(missing)} of the {len(inside)} intervals b scraped"
    # once the replica is back, its copy deduplicates with b's: still exactly what was sent
    time.sleep(3 * stack.settle_seconds())
    assert store.value(query) == before + sent


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
