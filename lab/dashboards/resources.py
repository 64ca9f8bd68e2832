"""Saturation's resources, beside the busy workers of golden.py: each gunicorn process's CPU and
memory in every pipeline, and the host's CPU, memory and disk pulled (node_exporter) and pushed
(collectd); on the three-way dashboard each says how the views differ."""

from grafana_foundation_sdk.builders import timeseries

from ..host import CollectdQueries, NodeQueries
from ..settings import collectd_interval_seconds
from .panels import timeseries_panel
from .pipelines import (
    EXPORT,
    FLUSH,
    GRAPHITE,
    PROMETHEUS,
    SCRAPE,
    STATSD,
    PromPipeline,
    graphite,
    label,
    promql,
    statsd_panel,
)

COLLECTD_INTERVAL = collectd_interval_seconds()
NODE = NodeQueries()  # Grafana's $__rate_interval
COLLECTD = CollectdQueries()


def process_cpu(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Saturation: CPU per process ({p.name})",
        "The share of one core each gunicorn process keeps busy, user and system: 100 % is a sync worker "
        "that spends all its time computing, whose requests wait for CPU however few are in flight. One "
        f"line per {label(p.names.process)}; the master forks and watches, and should stay near 0.",
        "percentunit",
        p.query(p.queries.cpu(), label(p.names.process)),
    )


def process_memory(p: PromPipeline) -> timeseries.Panel:
    return p.panel(
        f"Saturation: resident memory per process ({p.name})",
        "Each gunicorn process's resident set. It counts the pages a worker still shares with the master "
        "(copied on write), so the lines add up to more than the machine gives them; a line that only "
        f"climbs is a leak, which the WorkerMemoryHigh alert catches at 256 MiB. Read as {p.gauged}.",
        "bytes",
        p.query(p.queries.memory(), label(p.names.process)),
    )


def statsd_process_cpu() -> timeseries.Panel:
    return statsd_panel(
        "Saturation: CPU per process (StatsD)",
        "The share of one core each gunicorn process keeps busy: perSecond of the CPU seconds each worker "
        "pushes as an absolute gauge under its slot (worker_0, ...; slot 0 also pushes the master's).",
        "percentunit",
        graphite(STATSD.cpu()),
    )


def statsd_process_memory() -> timeseries.Panel:
    return statsd_panel(
        "Saturation: resident memory per process (StatsD)",
        "Each gunicorn process's resident set, an absolute gauge under its slot; a worker that exits "
        "sends zeros for its slot, and its replacement takes the slot over.",
        "bytes",
        graphite(STATSD.memory()),
    )


def _node(title: str, description: str, unit: str, *queries: tuple[str, str]) -> timeseries.Panel:
    return timeseries_panel(
        f"{title} (node_exporter)",
        f"{description} Pulled: Prometheus scrapes node_exporter every {SCRAPE:g} s (job node).",
        unit,
        PROMETHEUS,
        *(promql(PROMETHEUS, expr, legend) for expr, legend in queries),
    )


def _collectd(title: str, description: str, unit: str, *targets: str) -> timeseries.Panel:
    return timeseries_panel(
        f"{title} (collectd)",
        f"{description} Pushed: collectd reads every {COLLECTD_INTERVAL:g} s and write_graphite sends it "
        "to carbon.",
        unit,
        GRAPHITE,
        *(graphite(target) for target in targets),
    )


def host_cpu() -> list[timeseries.Panel]:
    description = "The share of the machine's CPU time, every core, not idle (iowait counts as busy)."
    return [
        _node("Host CPU busy", description, "percentunit", (NODE.cpu_busy(), "{{instance}}")),
        _collectd("Host CPU busy", description, "percentunit", COLLECTD.cpu_busy()),
    ]


def host_memory() -> list[timeseries.Panel]:
    return [
        _node(
            "Host memory used",
            "MemTotal less MemAvailable: what the kernel could not hand out now (page cache it can drop "
            "counts as free).",
            "bytes",
            (NODE.memory_used(), "used {{instance}}"),
            (NODE.memory_total(), "total {{instance}}"),
        ),
        _collectd(
            "Host memory used",
            "collectd's `used`: total less free, buffers, page cache and slab. Not node_exporter's figure: "
            "the same machine, counted another way.",
            "bytes",
            f"alias({COLLECTD.memory_used()}, 'used')",
            f"alias({COLLECTD.memory_total()}, 'total')",
        ),
    ]


def host_disk() -> list[timeseries.Panel]:
    description = "Bytes per second read from and written to the machine's disks."
    return [
        _node(
            "Host disk I/O",
            description,
            "Bps",
            (NODE.disk_bytes("read"), "read {{instance}}"),
            (NODE.disk_bytes("written"), "written {{instance}}"),
        ),
        _collectd(
            "Host disk I/O",
            description,
            "Bps",
            f"alias({COLLECTD.disk_bytes('read')}, 'read')",
            f"alias({COLLECTD.disk_bytes('written')}, 'written')",
        ),
    ]


def host_panels(*, pulled: bool = True, pushed: bool = True) -> list[timeseries.Panel]:
    """The host's CPU, memory and disk pulled (node_exporter), then pushed (collectd), or only one."""
    pairs = (host_cpu(), host_memory(), host_disk())
    return [node for node, _ in pairs if pulled] + [collectd for _, collectd in pairs if pushed]


# What differs between the views of a process's or the host's resources: said once, under each.
DIFFERENCES = {
    "processes": "Scrape vs OTLP vs StatsD: the same /proc figures of the same processes. The scrape reads "
    f"them at each scrape ({SCRAPE:g} s) in whichever worker answers it, named by slot; each worker "
    f"observes itself at each export ({EXPORT:g} s), named by its instance id, which a recycled worker's "
    f"replacement does not keep; StatsD gets them at each gauge push, flushed every {FLUSH:g} s, named by "
    "slot. Only the scrape sees a worker that hangs: the push views then keep its last figures.",
    "host": "node_exporter vs collectd: the same kernel counters, pulled and pushed. They name them apart "
    "(node_memory_MemAvailable_bytes vs memory-used), count memory apart, and lose data apart: a scrape "
    "missed while Prometheus is down is gone, as is a collectd push while carbon is (it keeps a small "
    "buffer and drops the rest).",
}


def explained(panel: timeseries.Panel, subject: str) -> timeseries.Panel:
    return panel.description(f"{panel.build().description} {DIFFERENCES[subject]}")
