"""`make bench` (lab/bench/): its arithmetic and its report, then one tiny real run."""

import shutil
import time
from types import SimpleNamespace
from urllib.request import Request, urlopen

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from app.signals import OTEL_REQUEST_DURATION
from lab.bench import beyond, machine, overhead, results, scrape
from lab.bench.machine import Load
from lab.bench.overhead import ExportCost, Overhead
from lab.bench.scrape import ScrapeCost
from lab.settings import UNRESOLVABLE
from lab.stack.otlp_sink import OtlpSink

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:40000/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.21ms  521.38us  17.33ms   93.02%
    Req/Sec     1.81k    83.02     1.94k    70.00%
  Latency Distribution
     50%    2.17ms
     75%    2.36ms
     90%    2.54ms
     99%  950.00us
  3613 requests in 2.00s, 0.63MB read
Requests/sec:   1804.57
Transfer/sec:    321.13KB
"""


def test_wrk_output_is_read_in_milliseconds():
    assert machine.parse_wrk(WRK_OUTPUT) == (3613, 1804.57, 2.17, pytest.approx(0.95))


def test_throughput_ratio_is_requests_per_cpu_second_head_to_head():
    def duel(reference_us, variant_us):
        # 1000 requests each; CPU time in ns
        return Load(1000, 0, 0, 0, reference_us * 1000 * 1000), Load(1000, 0, 0, 0, variant_us * 1000 * 1000)

    over = Overhead(
        duels={"all": [duel(400, 440), duel(500, 550)], "all, down": [duel(400, 420), duel(500, 500)]},
        alone={},
    )
    assert over.capacity("all") == pytest.approx([400 / 440, 500 / 550])
    # another base: through its own duel of the same round
    assert over.capacity("all, down", "all") == pytest.approx([(400 / 420) / (400 / 440), 1.1])


def test_peers_cost_is_cpu_above_off_and_lab_over_peer_per_round():
    def duel(reference_us, variant_us):
        return Load(1000, 0, 0, 0, reference_us * 10**6), Load(1000, 0, 0, 0, variant_us * 10**6)

    over = Overhead(duels={"lab": [duel(400, 420), duel(500, 530)], "peer": [duel(400, 440), duel(500, 510)]})
    assert over.cpu_above_reference("lab") == pytest.approx([20, 30])
    assert over.cost_ratio("lab", "peer") == pytest.approx([0.5, 3.0])


def test_the_report_has_every_table():
    def load(rps, p99, cpu_us):
        return Load(1000, rps, p99 / 2, p99, cpu_us * 1000 * 1000)

    names = [v.name for v in (*overhead.OVERHEAD_VARIANTS, *overhead.PEER_VARIANTS, *overhead.DOWN_VARIANTS)]
    over = Overhead(
        duels={name: [(load(0, 0, 400), load(0, 0, 420))] for name in names},
        alone={name: [load(2000, 3.0, 400)] for name in [overhead.REFERENCE.name, *names]},
        rounds=1,
    )
    over.duels["prometheus_flask_exporter"] = [(load(0, 0, 400), load(0, 0, 440))]
    over.duels["opentelemetry-instrumentation-flask"] = [(load(0, 0, 400), load(0, 0, 480))]
    by_workers = {workers: ScrapeCost([4.0, 5.0, 6.0], 3 * workers, 150) for workers in scrape.WORKER_COUNTS}
    recycles = {
        "the lab": {
            n: scrape.RecycleCost([5.0, 6.0], [5.0, 5.0], 14, 12) for n in scrape.RECYCLE_CHECKPOINTS
        },
        "prometheus_flask_exporter": {
            n: scrape.RecycleCost([5.0 + n, 6.0 + n], [5.0, 5.0], 12 + 3 * n, 12)
            for n in scrape.RECYCLE_CHECKPOINTS
        },
    }
    datagrams = {"the lab": (200, 200), "tutorial hooks": (400, 200)}
    # idle `off` 1 ms; the lab's 6 exports 13 ms (2 ms each above it), the peer's 5 in 16 ms (3 each)
    exports = {
        "off": ExportCost(1_000_000, 0),
        "otel": ExportCost(13_000_000, 6),
        "opentelemetry-instrumentation-flask": ExportCost(16_000_000, 5),
    }
    text = results.results_text(over, by_workers, recycles, datagrams, exports, 300.0)
    assert "| prometheus | (none sent) | 0.952 (0.952–0.952) | 1.00 (1.00–1.00) | 1.00 (1.00–1.00) |" in text
    assert "| off + statsd, tutorial hooks (peer) | a bound UDP socket nobody reads | 0.952" in text
    assert "| a UDP port nobody has bound | 1.000 (1.000–1.000) |" in text
    assert "| otel | (none sent) | 0.952 (0.952–0.952) |" in text
    assert "| otel | 6 | 2.00 | 0.40 |\n| opentelemetry-instrumentation-flask | 5 | 3.00 | 0.60 |" in text
    assert "| 8 | 5.0 | 4.5–5.5 | 6.0 | 24 | 150 |" in text
    assert "| 500 | 5.5 (5.0) | 1.10 | 14 (12) | 505.5 (5.0) | 101.10 | 1512 (12) |" in text
    assert (
        "| the lab | 1.00 (200 for 200 requests) |\n| tutorial hooks | 2.00 (400 for 200 requests) |" in text
    )
    # the lab's pull 20 µs above off, the peer's 40: half the cost
    assert (
        "| prometheus | 20.0 (20.0–20.0) | prometheus_flask_exporter | 40.0 (40.0–40.0) | 0.50 (0.50–0.50) |"
        in text
    )
    assert (
        "| otel | 20.0 (20.0–20.0) | opentelemetry-instrumentation-flask | 80.0 (80.0–80.0) | "
        "0.25 (0.25–0.25) |" in text
    )


def _export(count: int, route: str) -> bytes:
    """An OTLP export of one worker: the request histogram's cumulative count for `route`."""
    export = ExportMetricsServiceRequest()
    metric = export.resource_metrics.add().scope_metrics.add().metrics.add(name=OTEL_REQUEST_DURATION.name)
    point = metric.histogram.data_points.add(count=count)
    point.attributes.add(key="http.route").value.string_value = route
    return export.SerializeToString()


def test_the_otlp_sink_answers_200_and_adds_up_the_newest_total_of_each_series():
    sink = OtlpSink()
    try:
        for count, route in ((3, "/"), (5, "/"), (2, "/database/")):  # cumulative: 5 replaces 3
            with urlopen(Request(sink.url, data=_export(count, route), method="POST")) as answer:
                assert answer.status == 200
        assert (sink.exports, sink.total(OTEL_REQUEST_DURATION.name)) == (3, 7)
    finally:
        sink.close()


def test_a_server_that_should_push_otlp_and_did_not_fails_the_round():
    def sink(port: int, total: int) -> SimpleNamespace:
        return SimpleNamespace(url=f"http://127.0.0.1:{port}/v1/metrics", total=lambda _: total)

    silent = SimpleNamespace(receivers=[sink(1, 0)])
    overhead.check_exported(overhead.REFERENCE, silent)  # `off` pushes nothing: nothing to check
    for variant in (overhead.Variant("all", "all", "unread"), overhead.PEER_VARIANTS[-1]):
        with pytest.raises(RuntimeError, match="no request reached its OTLP receiver"):
            overhead.check_exported(variant, silent)
    # exporting to two receivers: each must have got the requests
    two = overhead.Variant("otel, two receivers", "otel", "unread", otlp_receivers=2)
    overhead.check_exported(two, SimpleNamespace(receivers=[sink(1, 5), sink(2, 5)]))
    with pytest.raises(RuntimeError, match=r"127\.0\.0\.1:2/"):
        overhead.check_exported(two, SimpleNamespace(receivers=[sink(1, 5), sink(2, 0)]))


@pytest.mark.processes
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (make deps)")
def test_one_tiny_round_of_the_overhead_figure_runs(monkeypatch):
    for name in ("WARMUP_SECONDS", "DUEL_SECONDS", "ALONE_SECONDS"):
        monkeypatch.setattr(overhead, name, 1)
    monkeypatch.setattr(machine, "EXPORT_INTERVAL_MS", 1000)  # a few exports in a round of seconds
    otel_peer = overhead.PEER_VARIANTS[-1]
    # `all` pushes OTLP too: the round fails unless both servers' receivers counted requests
    variants = (overhead.Variant("all", "all", "unread"), otel_peer)
    over = overhead.overhead(variants, rounds=1, progress=lambda _: None)
    for variant in variants:
        (ratio,) = over.capacity(variant.name)
        assert 0.3 < ratio < 3  # a real figure: both servers answered and used CPU
    assert over.alone["all"][0].requests > 0 and over.alone["off"][0].p99_ms > 0


@pytest.mark.processes
def test_the_otel_peer_and_the_lab_export_what_they_served():
    config = {"GUNICORN_WORKERS": 2, "OTEL_METRIC_EXPORT_INTERVAL": 200, **machine.FAST_DB}
    subjects = [{"LAB_METRICS": "otel"}, overhead.EXPORT_SUBJECTS["opentelemetry-instrumentation-flask"]]
    with machine.servers([{**config, **subject} for subject in subjects]) as started:
        for server in started:
            machine.send_mix(server, 20)
        deadline = time.monotonic() + 10
        # at least the mix: readiness checks of /healthz are requests too
        while any(server.otlp.total(OTEL_REQUEST_DURATION.name) < 20 for server in started):
            assert time.monotonic() < deadline, [
                server.otlp.total(OTEL_REQUEST_DURATION.name) for server in started
            ]
            time.sleep(0.1)


@pytest.mark.processes
def test_the_export_thread_is_charged_to_the_worker(monkeypatch):
    monkeypatch.setattr(machine, "EXPORT_INTERVAL_MS", 100)
    two = {"otel, two receivers": beyond.EXPORT_SUBJECTS["otel, two receivers"]}
    costs = overhead.export_cost(exports=20, subjects={**overhead.EXPORT_SUBJECTS, **two})
    idle = costs["off"]
    assert idle.exports == 0
    # a worker exporting to two receivers: both get every interval's export, give or take the intervals
    # one of its two reader threads slips on a busy machine (72 against 2 x 38 in one suite run)
    assert costs["otel, two receivers"].exports >= 2 * 0.9 * costs["otel"].exports
    for name in ("otel", "opentelemetry-instrumentation-flask", "otel, two receivers"):
        assert costs[name].exports >= 10
        # an export costs milliseconds; a thread left uncounted would leave an idle worker's microseconds
        assert (costs[name].cpu_ns - idle.cpu_ns) / costs[name].exports > 200_000, name


@pytest.mark.processes
def test_the_lab_sends_one_datagram_per_request_and_the_tutorial_hooks_two():
    assert scrape.datagrams_per_request(20, **scrape.DATAGRAM_SUBJECTS["the lab"]) == (20, 20)
    assert scrape.datagrams_per_request(20, **scrape.DATAGRAM_SUBJECTS["tutorial hooks"]) == (40, 20)


@pytest.mark.processes
def test_a_recycled_worker_leaves_files_behind_under_the_peer_not_under_the_lab():
    config = {"GUNICORN_WORKERS": 2, "STATSD_HOST": UNRESOLVABLE, **machine.FAST_DB}
    subjects = scrape.RECYCLE_SUBJECTS
    with machine.servers([{**config, **subject} for subject in subjects.values()]) as (lab, peer):

        def recycle_then_serve():
            for server in (lab, peer):
                scrape.recycle_workers(server, 2)  # serves the mix, then SIGTERMs every worker
                machine.send_mix(server, 10)  # the new workers write their files
                assert server.metric_name.encode() in machine.request(server.metrics_url)

        def files_of(server, pids) -> list[str]:
            suffixes = tuple(f"_{pid}.db" for pid in pids)
            return [name for name in server.db_files() if name.endswith(suffixes)]

        recycle_then_serve()
        lab_dead, peer_dead = lab.workers(), peer.workers()  # the next recycle's victims
        recycle_then_serve()
        assert files_of(lab, lab_dead) == []  # folded into the archive (app/multiproc.py)
        assert files_of(peer, peer_dead)  # only their live gauges are gone


@pytest.mark.processes
def test_the_processes_section_measures_each_pipeline_where_it_reads_them():
    from lab.bench.processes import HEADING, processes_cost, processes_text

    cost = processes_cost(rounds=5)
    assert 0 < cost.collect_us < cost.scrape_us  # the processes' part of a whole scrape
    plain, with_processes = cost.export_us
    assert 0 < plain < with_processes  # the process instruments are collected at every export
    assert cost.push_bytes[0] == 0 < cost.push_bytes[1]  # nothing else changed: only they are pushed
    text = "\n".join(processes_text(cost))
    assert text.startswith(HEADING)
    assert all(f"| {pipeline} |" in text for pipeline in ("pull", "OTLP", "StatsD"))
