"""process-metrics-multiprocess: the workers' memory as /metrics shows it in multiprocess mode.

Three gunicorn servers of 4 workers, the same traffic to each: prometheus_client's multiprocess
registry as its docs build it (no process metrics at all), the same with ProcessCollector added
back (lab/scenarios/naive/process_collector.py: the process that answers the scrape), and the
lab's (app/processes.py: every live worker by slot, and the master). Each is scraped again and
again; the truth is /proc's figures of the lab's workers after each of its scrapes (the naive
server's workers carry the same load).
"""

import time
from contextlib import ExitStack
from pathlib import Path

import psutil

from app import processes
from app.faults import REFRESH_SECONDS
from app.signals import MASTER, PROCESS_MEMORY, WORKER

from .. import traffic
from ..fault_control import FaultControl
from .outcome import Chart, Line, Outcome, Panel, Row
from .running import INDEX, ScenarioError, gunicorn, naive_config, ok, ready, total

WORKERS = 4
CLIENTS = 8
RATE = 200  # requests/s
# The requests keep this much memory in all, each its share (and burn a little CPU): the workers
# differ, as under real load.
LEAKED_MB = 200
CPU_MS = 2
MB = 1 << 20
TOKEN = "scenario-token"


def workers_rss(server) -> float:
    """The server's workers' resident memory, summed, from /proc (psutil), in MB."""
    return sum(psutil.Process(pid).memory_info().rss for pid in server.workers()) / MB


def run(short: bool, logs: Path) -> Outcome:
    sent, scrapes = (200, 10) if short else (1000, 30)
    settings = {"GUNICORN_WORKERS": WORKERS, "LAB_ADMIN_TOKEN": TOKEN}
    load = {"routes": {INDEX.template: {"cpu_ms": CPU_MS, "leak_mb": LEAKED_MB / sent}}}
    with ExitStack() as stack:
        documented = stack.enter_context(
            gunicorn(
                "documented", logs, naive_config("multiprocess_registry"), metrics="prometheus", **settings
            )
        )
        naive = stack.enter_context(
            gunicorn("naive", logs, naive_config("process_collector"), metrics="prometheus", **settings)
        )
        lab = stack.enter_context(gunicorn("lab", logs, metrics="prometheus", **settings))
        servers = (documented, naive, lab)
        ready(*servers)
        for server in servers:
            FaultControl(server.url, TOKEN).replace(load)
        time.sleep(2 * REFRESH_SECONDS)  # every worker has seen the faults (app/faults.py's promise)
        for server in servers:
            answered = ok(traffic.send(server.url + INDEX.template, RATE, sent / RATE, threads=CLIENTS))
            if answered != sent:
                raise ScenarioError(f"{server.name}: {answered} of {sent} requests answered 200")
        truth, naive_seen, lab_seen, documented_series = [], [], [], 0
        for _ in range(scrapes):  # interleaved, each on a new connection, as Prometheus scrapes
            found = [s for s in documented.scrape() if s.name.startswith("process_")]
            documented_series = max(documented_series, len(found))
            # ProcessCollector's name is the lab's too (app/signals.py), there unlabelled
            naive_seen.append(total(naive.scrape(), PROCESS_MEMORY.name) / MB)
            samples = lab.scrape()
            truth.append(workers_rss(lab))
            workers = [s for s in samples if s.name == PROCESS_MEMORY.name and s.labels.get(WORKER) != MASTER]
            lab_seen.append(sum(s.value for s in workers) / MB)
        slots = sorted(processes.live(str(lab.multiproc)))
    real = truth[-1]
    best = max(naive_seen)
    worst_error = max(abs(a - b) for a, b in zip(lab_seen, truth, strict=True))
    return Outcome(
        scenario="process-metrics-multiprocess",
        unit="MB resident, the 4 workers summed",
        rows=[
            Row("truth", f"/proc of the {WORKERS} workers, read after each scrape", round(real, 1)),
            Row(
                "naive",
                "ProcessCollector added to the multiprocess registry "
                "(lab/scenarios/naive/process_collector.py): the highest scrape",
                round(best, 1),
                f"{scrapes} scrapes read {min(naive_seen):.1f} to {best:.1f} MB, one process each, "
                "unlabelled: which worker is never said",
            ),
            Row(
                "other",
                "multiprocess registry as prometheus_client documents it",
                documented_series,
                "no process_* series at all: custom collectors do not work in multiprocess mode",
            ),
            Row(
                "lab",
                "app/processes.py: each live worker by slot, read at the scrape; the last scrape",
                round(lab_seen[-1], 1),
                f"slots {', '.join(slots)}; at most {worst_error:.1f} MB off /proc over {scrapes} scrapes",
            ),
        ],
        margin=(
            f"stated: the naive scrape shows one worker of {WORKERS}, about 1/{WORKERS} of the total; "
            f"measured: its highest scrape is {best / real:.0%} of the truth"
        ),
        why=(
            "In multiprocess mode /metrics is built from the files the workers write, and a process "
            "collector can only read the process it runs in: the worker that happens to answer the "
            "scrape. Added back naively, process_resident_memory_bytes jumps from one worker to "
            "another at every scrape under one unlabelled name, and no scrape ever shows the others "
            "(a leaking worker can hide for ever). The lab reads every live worker's process at the "
            "scrape, named by a slot the master hands out, so the series stay bounded across recycles."
        ),
        reference=(
            "https://prometheus.github.io/client_python/multiprocess/ ; "
            "https://github.com/rycus86/prometheus_flask_exporter/issues/18"
        ),
        fix="app/processes.py (slots and pid files), app/pull.py (WorkerProcesses), app/gunicorn.conf.py",
        short=short,
        details={
            "workers": WORKERS,
            "lab_worst_error_mb": worst_error,
            "documented_series": documented_series,
            "lab_slots": len([slot for slot in slots if slot != MASTER]),
        },
        chart=Chart(
            f"process-metrics-multiprocess: /metrics read {scrapes} times after {sent} requests",
            "scrape",
            [
                Panel(
                    "MB resident (workers)",
                    [
                        Line("truth", "/proc, the workers summed", list(enumerate(truth, 1))),
                        Line("naive", "ProcessCollector added", list(enumerate(naive_seen, 1))),
                        Line("lab", "the lab (every worker, by slot)", list(enumerate(lab_seen, 1))),
                    ],
                )
            ],
        ),
    )
