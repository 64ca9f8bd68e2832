"""Section 6: what the pull side beyond one machine costs (lab/stack/ha.py, docs/beyond-one-machine.md).

1. The OTLP push sent twice, as the HA topology sends it (a reader and an exporter per receiver in
   each worker, OTLP_EXTRA_METRICS_ENDPOINTS) against once: under wrk, each head to head with `off`
   as section 1 loads its variants, and idle, the export threads alone, as section 1's export table.
2. A second scraper: an idle app of the lab's 4 workers scraped by none, one and two scrapers in
   turn, interleaved; the CPU its workers spend per scrape, and at prometheus.yml's scrape interval.
3. The long-term store's disk per day: VictoriaMetrics, as `make native-ha` runs it, fed one day of
   the app's series at the load generator's rate (history.py, section 5's month), once, and as the
   two replicas send it (the same samples, scraped at other moments): with the deduplication at the
   scrape interval, and without it beside.
"""

import json
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from ..settings import LOOPBACK, free_port, prometheus_scrape_seconds
from ..stack.deps import VICTORIA_METRICS
from ..stack.ha import store_argv
from ..stack.processes import Process, http_ok
from . import machine
from .history import DAY, Traffic, load_mix
from .machine import FAST_DB, cpu_ns, request, rotated, send_mix, servers
from .overhead import ROUNDS, ExportCost, Overhead, Variant, export_cost, overhead

HEADING = "## 6. Beyond one machine"
ONE, TWO = (
    Variant("otel", "otel", "unread"),
    Variant("otel, two receivers", "otel", "unread", otlp_receivers=2),
)
EXPORT_SUBJECTS = {
    "off": {"LAB_METRICS": "off"},
    ONE.name: {"LAB_METRICS": "otel"},
    TWO.name: {"LAB_METRICS": "otel", "otlp_receivers": 2},
}
SCRAPERS = (0, 1, 2)
SCRAPE_WINDOW_SECONDS = 4.0
SCRAPE_EVERY_SECONDS = 0.2  # each scraper's pace in the bench: many scrapes per window
REPLICA_OFFSET_SECONDS = 2.3  # replica b scrapes at other moments than a, as two Prometheus servers do


@dataclass
class ScraperCost:
    """Per round, by the number of scrapers: the workers' CPU (ns) and the scrapes they answered."""

    cpu_ns: dict[int, list[int]]
    scrapes: dict[int, list[int]]

    def per_scrape_ms(self) -> list[float]:
        """Per round: the CPU the scrapes added over no scraper, per scrape."""
        return [
            (cpu - idle) / 1e6 / count
            for n in SCRAPERS[1:]
            for cpu, idle, count in zip(self.cpu_ns[n], self.cpu_ns[0], self.scrapes[n], strict=True)
        ]

    def two_over_one(self) -> list[float]:
        """Per round: the CPU two scrapers added over what one added (2 if a scrape costs the same)."""
        return [
            (two - idle) / (one - idle)
            for one, two, idle in zip(self.cpu_ns[1], self.cpu_ns[2], self.cpu_ns[0], strict=True)
        ]


def scrape(url: str, until: float, counted: list[int]) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        request(url)
        counted.append(1)
        time.sleep(max(0.0, SCRAPE_EVERY_SECONDS - (time.monotonic() - started)))


def scraper_cost(rounds: int = ROUNDS) -> ScraperCost:
    """The lab's app (4 workers, every series made by the mix) scraped by 0, 1 and 2 scrapers in turn,
    in an order rotated from round to round; every worker's CPU meanwhile."""
    result = ScraperCost({n: [] for n in SCRAPERS}, {n: [] for n in SCRAPERS})
    app_cpu, _ = machine.cpu_plan()
    config = {"cpu": app_cpu, "LAB_METRICS": "prometheus", "GUNICORN_WORKERS": 4, **FAST_DB}
    with servers([config]) as (server,):
        send_mix(server, 100)
        for number in range(rounds):
            for scrapers in rotated(list(SCRAPERS), number):
                counted: list[int] = []
                workers = server.workers()
                before = cpu_ns(workers)
                until = time.monotonic() + SCRAPE_WINDOW_SECONDS
                threads = [
                    threading.Thread(target=scrape, args=(server.metrics_url, until, counted))
                    for _ in range(scrapers)
                ]
                for thread in threads:
                    thread.start()
                time.sleep(SCRAPE_WINDOW_SECONDS)
                for thread in threads:
                    thread.join()
                result.cpu_ns[scrapers].append(cpu_ns(workers) - before)
                result.scrapes[scrapers].append(len(counted))
    return result


@dataclass
class StoreDisk:
    samples: int  # one copy of the day
    series: int
    bytes_one_copy: int
    bytes_two_copies: int  # the replicas' copies, deduplicated at the scrape interval
    bytes_two_copies_kept: int  # the same copies, no deduplication
    kept: dict[str, int]  # the samples each store keeps (count_over_time over the day)
    answered: dict[str, float]  # what each store answers for the day's requests


def day_series(step: int, until: int, offset: float, span: int = DAY) -> tuple[list[dict], int]:
    """`span` s (a day) of the app's series up to `until`, one sample every `step` s, as VictoriaMetrics's
    JSON line import takes them (timestamps in ms), shifted by `offset` s; and the sample count."""
    traffic = Traffic(load_mix(), f"{LOOPBACK}:8000", step, until - span)
    lines: dict[tuple[str, str], dict] = {}
    while traffic.at < until:
        traffic.advance()
        stamp = int((traffic.at + offset) * 1000)
        for name, labels, value in traffic.samples():
            line = lines.get((name, labels))
            if line is None:
                metric = {"__name__": name}
                for pair in labels.split('",'):
                    key, _, val = pair.partition('="')
                    metric[key] = val.rstrip('"')
                line = lines[name, labels] = {"metric": metric, "values": [], "timestamps": []}
            line["values"].append(value)
            line["timestamps"].append(stamp)
    return list(lines.values()), sum(len(line["values"]) for line in lines.values())


def disk_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


class Store:
    """VictoriaMetrics single-node on a free loopback port, with `make native-ha`'s flags."""

    def __init__(self, data_dir: Path, dedup: bool):
        self.data_dir = data_dir
        port = free_port()
        self.url = f"http://{LOOPBACK}:{port}"
        dedup_seconds = prometheus_scrape_seconds() if dedup else None
        argv = [str(VICTORIA_METRICS), *store_argv(port, data_dir, dedup_seconds)]
        self.process = Process(argv, name="long-term store")

    def start(self) -> None:
        self.process.wait_ready(http_ok(self.url + "/health"), timeout=30)

    def load(self, lines: list[dict]) -> None:
        body = "".join(json.dumps(line) + "\n" for line in lines)
        requests.post(self.url + "/api/v1/import", data=body.encode(), timeout=300).raise_for_status()

    def settle(self, months: list[str]) -> int:
        """Flush, merge each month's partition (deduplicating, where on), and return the bytes on disk."""
        requests.get(self.url + "/internal/force_flush", timeout=60).raise_for_status()
        for month in months:
            params = {"partition_prefix": month}
            requests.get(self.url + "/internal/force_merge", params=params, timeout=600).raise_for_status()
        size, stable = disk_bytes(self.data_dir), 0
        while stable < 3:  # the merge runs in the background: until the size holds for 3 s
            time.sleep(1)
            now = disk_bytes(self.data_dir)
            stable = stable + 1 if now == size else 0
            size = now
        return size

    def value(self, query: str, at: int) -> float:
        answer = requests.get(self.url + "/api/v1/query", params={"query": query, "time": at}, timeout=60)
        return float(answer.json()["data"]["result"][0]["value"][1])


def store_disk(span: int = DAY) -> StoreDisk:
    if not VICTORIA_METRICS.exists():
        raise SystemExit(f"{VICTORIA_METRICS} not found: `make deps` fetches VictoriaMetrics")
    step = int(prometheus_scrape_seconds())
    until = int(time.time()) // step * step - 600  # ends 10 min ago: inside any store's window
    months = sorted({f"{datetime.fromtimestamp(t, UTC):%Y_%m}" for t in (until - span, until)})
    a, samples = day_series(step, until, 0, span)
    b, _ = day_series(step, until, REPLICA_OFFSET_SECONDS, span)
    work = Path(tempfile.mkdtemp(prefix="lab-bench-store-"))
    sizes, kept, answered = {}, {}, {}
    try:
        for name, dedup, copies in (("one", True, [a]), ("two", True, [a, b]), ("kept", False, [a, b])):
            store = Store(work / name, dedup)
            try:
                store.start()
                for copy in copies:
                    store.load(copy)
                sizes[name] = store.settle(months)
                kept[name] = int(store.value(f'sum(count_over_time({{job="app"}}[{span}s]))', until))
                answered[name] = store.value("sum(http_requests_total)", until)
            finally:
                store.process.stop(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return StoreDisk(samples, len(a), sizes["one"], sizes["two"], sizes["kept"], kept, answered)


@dataclass
class Beyond:
    over: Overhead
    exports: dict[str, ExportCost]
    scrapers: ScraperCost
    store: StoreDisk


def beyond(progress=print) -> Beyond:
    progress(f"    the OTLP push to two receivers against one: under wrk, {ROUNDS} rounds; then idle")
    over = overhead((ONE, TWO), progress=progress)
    exports = export_cost(subjects=EXPORT_SUBJECTS)
    progress(f"    a second scraper: 0, 1 and 2 scrapers in turn, {ROUNDS} rounds")
    scrapers = scraper_cost()
    progress("    the long-term store's disk per day: VictoriaMetrics fed a day, once and twice")
    return Beyond(over, exports, scrapers, store_disk())


def _median_range(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def beyond_text(result: Beyond) -> list[str]:
    over, store, scrapers = result.over, result.store, result.scrapers
    interval_ms = machine.EXPORT_INTERVAL_MS
    idle = result.exports["off"]
    per_interval = {  # the export threads' CPU per interval: every receiver's export of it
        name: (cost.cpu_ns - idle.cpu_ns)
        / 1e6
        / (cost.exports / EXPORT_SUBJECTS[name].get("otlp_receivers", 1))
        for name, cost in result.exports.items()
        if name != "off"
    }
    scrape = prometheus_scrape_seconds()
    per_scrape = statistics.median(scrapers.per_scrape_ms())
    fed = (
        ("one replica's copy", f"{scrape:g} s", "one", store.bytes_one_copy),
        ("both replicas' copies", f"{scrape:g} s", "two", store.bytes_two_copies),
        ("both replicas' copies", "none", "kept", store.bytes_two_copies_kept),
    )
    return [
        HEADING,
        "",
        "What the HA topology (`make native-ha`, compose.ha.yaml) adds, measured the ways above.",
        "",
        "**The OTLP push sent to two receivers** (each worker: a reader, an exporter and a thread per",
        "receiver) against one, under wrk as in section 1, each head to head with `off`:",
        "",
        "| OTLP receivers | throughput ratio to `off` | worker CPU per request above `off`, µs |",
        "| --- | --- | --- |",
        *(
            f"| {variant.otlp_receivers} | {_median_range(over.capacity(variant.name), 3)} | "
            f"{_median_range(over.cpu_above_reference(variant.name), 0)} |"
            for variant in (ONE, TWO)
        ),
        "",
        f"Two against one, CPU above `off` per round: {_median_range(over.cost_ratio(TWO.name, ONE.name))}x.",
        "Each request is recorded once per reader: the SDK keeps the series for each reader.",
        "",
        f"Idle, the export threads alone (a worker after the mix, every {interval_ms} ms), above an idle",
        "`off` worker:",
        "",
        "| OTLP receivers | worker CPU per interval, ms | ms per second | exports received |",
        "| --- | --- | --- | --- |",
        *(
            f"| {EXPORT_SUBJECTS[name].get('otlp_receivers', 1)} | {ms:.2f} | "
            f"{ms * 1000 / interval_ms:.2f} | {result.exports[name].exports} |"
            for name, ms in per_interval.items()
        ),
        "",
        "**A second scraper**: the lab's app (4 workers, every series of the mix) scraped by 0, 1",
        f"and 2 scrapers in turn, {SCRAPE_WINDOW_SECONDS:g} s each, "
        f"each scraper every {SCRAPE_EVERY_SECONDS:g} s,",
        "in an order rotated per round. The workers' CPU above no scraper:",
        "",
        f"- per scrape: {_median_range(scrapers.per_scrape_ms())} ms;",
        f"- two scrapers over one: {_median_range(scrapers.two_over_one())}x: a scrape costs about the",
        "  same whoever asks, so a second Prometheus about doubles the app's scrape cost;",
        f"- at prometheus.yml's {scrape:g} s: {per_scrape / scrape:.2f} ms of CPU per second with one",
        f"  Prometheus, {2 * per_scrape / scrape:.2f} with two.",
        "",
        "**The long-term store's disk per day**: VictoriaMetrics single-node (the version",
        "`make native-ha` runs) fed one day of the app's series at the load generator's rate",
        f"({store.series} series, a sample every {scrape:g} s: {store.samples} samples), flushed and merged.",
        f"Replica b's copy: the same samples {REPLICA_OFFSET_SECONDS:g} s later, as replica b scrapes.",
        "",
        "| fed | deduplication | samples kept | disk, KiB per day | bytes per sample kept |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {what} | {dedup} | {store.kept[key]} | {size / 1024:.0f} | {size / store.kept[key]:.2f} |"
            for what, dedup, key, size in fed
        ),
        "",
        "`sum(http_requests_total)` at the day's end, as each store answers it: "
        + ", ".join(f"{store.answered[key]:.0f}" for _, _, key, _ in fed)
        + " (the copies carry the same labels once `replica` is dropped: one series).",
        "The history's counters are smoother than a live app's (section 5 says how it is made), so",
        "a real day compresses less: the ratio between the rows is the figure to keep.",
        "",
    ]
