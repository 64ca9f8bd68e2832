"""Section 5: the SLO rules after a month of history, the rules as they were and as they are.

A stack the tests start is minutes old; the lab's Prometheus keeps 30 days. For 1, 7 and 30 days
of history (history.py: the app's series at the scrape interval, backfilled with promtool 3), this
starts Debian's Prometheus on the history with the series continuing live, loads the lab's rule
file and, beside it, the SLO groups as they were before they were split (`before_rules`: every
window, 30 days included, read from the counters at every 5 s evaluation), and reads from
Prometheus itself, for every group, how long each evaluation took
(`prometheus_rule_group_last_duration_seconds`, the median of the evaluations after the first,
which reads the blocks from disk) and how many samples its rules read (`stats=all` on each rule's
expression). Both rule sets run in the one Prometheus at the same time, on the same two CPUs.

And the TSDB's disk per day: bytes per sample of the backfilled blocks, times the samples a day
of the series the lab's Prometheus scrapes and records (the app's, counted on a live gunicorn
after the bench's request mix; Prometheus's own; the recording rules').
"""

import json
import math
import shutil
import statistics
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ..backends import Prometheus
from ..rules import RULE_FILES, interval_seconds, rule, rules, slos
from ..settings import LOOPBACK, PROMETHEUS_YML, duration_seconds, free_port, prometheus_scrape_seconds
from ..stack.deps import PROMTOOL_3
from ..stack.processes import Process, die_with_parent, http_ok
from .history import DAY, LiveMetrics, Traffic, backfill, load_mix
from .machine import send_mix, servers
from .scrape import exposed_samples, samples

HISTORIES_DAYS = (1, 7, 30)
MEASURE_SECONDS = 190  # at each history: 38 evaluations of a 5 s group, three of a 1 m one
MONTH_HEADING = "## 5. Rules after a month"
RETENTION = "31d"  # a day more than the lab's 30: no block of the month is dropped while it runs
# The rules as they were: every window from the counters (the 30-minute rule, its range changed).
BEFORE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "30d")
BEFORE = "before"
RULES_FILE = next(path for path in RULE_FILES if path.name == "golden-signals.yml")


def before_rules() -> dict:
    """The SLO groups as the lab had them: each window's ratio from the counters, in one group per
    SLO at the global evaluation interval (no `interval`); the names prefixed `before:` so that they
    record beside today's rules without clashing."""
    result = []
    for slo in slos():
        template = rule("record", slo.over("30m"))["expr"]
        assert "[30m]" in template, f"{slo.over('30m')} no longer reads the counters"
        records = [
            {"record": f"{BEFORE}:{slo.over(window)}", "expr": template.replace("[30m]", f"[{window}]")}
            for window in BEFORE_WINDOWS
        ]
        result.append({"name": f"{BEFORE}/slo-{slo.name}", "rules": records})
    return {"groups": result}


@dataclass
class GroupCost:
    name: str
    interval: float
    durations: list[float]  # seconds, each evaluation after the first
    samples: int  # read by one evaluation of its rules, now
    missed: float  # evaluations skipped because the one before ran too long
    failures: float

    @property
    def seconds(self) -> float:
        return statistics.median(self.durations) if self.durations else float("nan")


@dataclass
class Month:
    costs: dict[int, dict[str, GroupCost]]  # days of history -> group -> its cost
    seconds: float  # of evaluations measured at each history
    bytes_per_sample: float
    backfilled_samples: int
    app_series: int
    prometheus_series: int
    recorded_series: int
    scrape_seconds: float
    elapsed: float

    @property
    def series(self) -> int:
        return self.app_series + self.prometheus_series + self.recorded_series

    @property
    def bytes_per_day(self) -> float:
        return self.series * DAY / self.scrape_seconds * self.bytes_per_sample


def prometheus_config(target: str, rule_files: list[Path]) -> dict:
    lab = yaml.safe_load(PROMETHEUS_YML.read_text())["global"]
    return {
        "global": {key: lab[key] for key in ("scrape_interval", "evaluation_interval")},
        "rule_files": [str(path) for path in rule_files],
        # honor_labels: the history's job and instance labels, which the live series carry on
        "scrape_configs": [
            {"job_name": "app", "honor_labels": True, "static_configs": [{"targets": [target]}]}
        ],
    }


def metrics(url: str) -> dict[str, dict[str, float]]:
    """Prometheus's own rule-group metrics: name -> rule_group -> value."""
    found: dict[str, dict[str, float]] = {}
    text = requests.get(f"{url}/metrics", timeout=10).text
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            if "rule_group" in sample.labels:
                found.setdefault(sample.name, {})[sample.labels["rule_group"]] = sample.value
    return found


def measure(
    url: str, rule_groups: dict[str, tuple[str, dict]], evaluation: float, seconds: float
) -> dict[str, GroupCost]:
    """Each group's evaluations over `seconds`, then what its rules read."""
    durations: dict[str, list[float]] = {key: [] for key in rule_groups}
    seen: dict[str, float] = {}
    first = metrics(url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = metrics(url)
        for key in rule_groups:
            at = now.get("prometheus_rule_group_last_evaluation_timestamp_seconds", {}).get(key, 0)
            if at > 0 and at != seen.get(key):
                if key in seen:  # the first evaluation reads the blocks from disk: not counted
                    durations[key].append(now["prometheus_rule_group_last_duration_seconds"][key])
                seen[key] = at
        time.sleep(evaluation / 2)
    last = metrics(url)

    def delta(name: str, key: str) -> float:
        return last.get(name, {}).get(key, 0) - first.get(name, {}).get(key, 0)

    costs = {}
    for key, (name, group) in rule_groups.items():
        read = sum(Prometheus(url).samples_read(r["expr"]) for r in group["rules"])
        costs[name] = GroupCost(
            name,
            interval_seconds(group, evaluation),
            durations[key],
            read,
            delta("prometheus_rule_group_iterations_missed_total", key),
            delta("prometheus_rule_evaluation_failures_total", key),
        )
    return costs


def run_prometheus(work: Path, blocks: list[Path], traffic_target: str, rule_files: list[Path]) -> tuple:
    """Debian's Prometheus on a copy (hard links) of `blocks`, scraping the live series."""
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    for block in blocks:
        shutil.copytree(block, data / block.name, copy_function=lambda s, d: Path(d).hardlink_to(s))
    config = work / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(traffic_target, rule_files), sort_keys=False))
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    argv = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        # The backfilled day blocks stay as they are: no compaction on the CPUs being measured.
        "--storage.tsdb.max-block-duration=2h",
        f"--web.listen-address={LOOPBACK}:{port}",
    ]
    process = Process(argv, log=work / "prometheus.log", preexec_fn=die_with_parent)
    process.wait_ready(http_ok(f"{url}/-/ready"), timeout=120)
    return process, url


def block_stats(blocks: list[Path]) -> tuple[int, int]:
    """(bytes on disk, samples) of TSDB blocks, from their files and meta.json."""
    size = sum(f.stat().st_size for block in blocks for f in block.rglob("*") if f.is_file())
    count = sum(json.loads((block / "meta.json").read_text())["stats"]["numSamples"] for block in blocks)
    return size, count


def app_series() -> int:
    """The samples one scrape of the app returns, after the bench's request mix (every route)."""
    with servers([{}]) as (server,):
        send_mix(server, 10)
        return samples(server)


def month(
    histories: tuple[int, ...] = HISTORIES_DAYS, seconds: float = MEASURE_SECONDS, progress=print
) -> Month:
    """Section 5, from start to end: a few minutes of backfill, then `seconds` at each history (days)."""
    if not PROMTOOL_3.exists():
        raise SystemExit(f"{PROMTOOL_3} is missing: `make deps` fetches promtool 3 into .lab/debian")
    started = time.monotonic()
    step = int(prometheus_scrape_seconds())
    evaluation = duration_seconds(yaml.safe_load(PROMETHEUS_YML.read_text())["global"]["evaluation_interval"])
    with tempfile.TemporaryDirectory(prefix="lab-bench-month-") as scratch:
        work = Path(scratch)
        end = int(time.time()) // step * step
        longest = max(histories)
        live = LiveMetrics(time.time)
        # The history's instance label is the live target's, so that the scrapes continue its series.
        traffic = live.traffic = Traffic(load_mix(), live.target, step, at=end - longest * DAY)
        progress(f"    backfilling {longest} days of {len(traffic.mix)} routes' series (promtool 3)")
        pool = work / "blocks"
        history = work / "history"
        history.mkdir()
        backfilled = backfill(str(PROMTOOL_3), traffic, end, pool, history)
        starts = {block: json.loads((block / "meta.json").read_text())["minTime"] for block in pool.iterdir()}
        all_blocks = sorted(starts, key=starts.get)
        size, count = block_stats(all_blocks)
        before = work / "before.yml"
        before.write_text(yaml.safe_dump(before_rules(), sort_keys=False))
        # Prometheus names a group "<its file>;<its name>" in its metrics.
        rule_groups = {
            f"{path};{group['name']}": (group["name"], group)
            for path in (RULES_FILE, before)
            for group in yaml.safe_load(path.read_text())["groups"]
        }
        costs: dict[int, dict[str, GroupCost]] = {}
        prometheus_series = recorded_series = 0
        for days in histories:
            since = (end - days * DAY) * 1000
            blocks = [block for block in all_blocks if starts[block] >= since]
            progress(f"    {days} days of history: {len(blocks)} blocks, {seconds:g} s of evaluations")
            process, url = run_prometheus(work / f"run-{days}", blocks, live.target, [RULES_FILE, before])
            try:
                costs[days] = measure(url, rule_groups, evaluation, seconds)
                prometheus_series = exposed_samples(requests.get(f"{url}/metrics", timeout=10).text)
                names = "|".join(r["record"] for r in rules("record"))
                recorded_series = int(Prometheus(url).value(f'count({{__name__=~"{names}"}})'))
            finally:
                process.stop(30)
        live.close()
    app = app_series()
    return Month(
        costs=costs,
        seconds=seconds,
        bytes_per_sample=size / count,
        backfilled_samples=backfilled,
        app_series=app,
        prometheus_series=prometheus_series,
        recorded_series=recorded_series,
        scrape_seconds=step,
        elapsed=time.monotonic() - started,
    )


WIDTH = 100  # bench/results.md's prose, wrapped


def _bullet(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False)


def _ms(seconds: float) -> str:
    return "no 2nd evaluation" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def _group_order(name: str) -> tuple[int, str]:
    return (0 if name.startswith(BEFORE) else 1, name)


def month_text(result: Month) -> list[str]:
    """Section 5 of bench/results.md."""
    histories = tuple(result.costs)
    longest = max(histories)
    names = sorted(result.costs[longest], key=_group_order)
    lines = [
        MONTH_HEADING,
        "",
        f"`lab bench --month`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {result.elapsed / 60:.1f} min.",
        "",
        *_bullet(
            f"History: {', '.join(map(str, histories))} days of the app's request counter and latency "
            f"histogram for the load generator's mix (loadgen/: 5 requests/s, 4 routes), one sample every "
            f"{result.scrape_seconds:g} s, plus the 5-minute rates the SLO groups record; backfilled with "
            f"`promtool tsdb create-blocks-from openmetrics` ({result.backfilled_samples:,} samples for "
            f"{longest} days), then continued live by a scrape target in the bench (lab/bench/history.py)."
        ),
        *_bullet(
            "Prometheus: Debian's 2.42, the lab's scrape and evaluation interval, "
            "prometheus/rules/golden-signals.yml and, beside it, the SLO groups as they were "
            "(`before/`: every window read from the counters at every evaluation). "
            "Both sets run at once in the one Prometheus."
        ),
        *_bullet(
            f"Each figure: the median of a group's evaluations over {result.seconds:g} s after its first "
            "(`prometheus_rule_group_last_duration_seconds`); samples: what its rules read in one "
            "evaluation (`stats=all`); share: the evaluation's time over the group's interval."
        ),
        "",
        "| group | interval | "
        + " | ".join(f"{days} d" for days in histories)
        + f" | share at {longest} d | samples per evaluation at {longest} d | samples/s at {longest} d |",
        "|---|---:|" + "---:|" * len(histories) + "---:|---:|---:|",
    ]
    for name in names:
        cells = []
        for days in histories:
            cost = result.costs[days][name]
            note = f" ({cost.missed:g} missed)" if cost.missed else ""
            note += f" ({cost.failures:g} failed)" if cost.failures else ""
            cells.append(f"{_ms(cost.seconds)}{note}")
        last = result.costs[longest][name]
        share = last.seconds / last.interval
        lines.append(
            f"| `{name}` | {last.interval:g} s | "
            + " | ".join(cells)
            + f" | {share:.3%} | {last.samples:,} | {last.samples / last.interval:,.0f} |"
        )
    lines += [
        "",
        *textwrap.wrap(
            f"TSDB disk: {result.bytes_per_sample:.2f} bytes a sample in the backfilled blocks. The lab's "
            f"Prometheus scrapes and records {result.series:,} series ({result.app_series:,} from one app "
            f"instance after every route, {result.prometheus_series:,} of its own, "
            f"{result.recorded_series:,} recorded): at one sample each every "
            f"{result.scrape_seconds:g} s, about "
            f"{result.bytes_per_day / 1e6:.1f} MB a day, {result.bytes_per_day * 30 / 1e6:.0f} MB for the "
            "30 days it keeps (compressed blocks; the WAL and the head add their few hours on top).",
            WIDTH,
            break_on_hyphens=False,
        ),
        "",
    ]
    return lines
