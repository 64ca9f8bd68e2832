"""recycling-cleanup: what becomes of dead workers' multiprocess files.

Three servers of the same app, workers recycled by gunicorn's `max_requests`
under the same traffic, scraped as it goes:

- naive, delete: `child_exit` deletes the dead worker's files
  (lab/scenarios/naive/delete_files.py), the usual "fix" for a growing directory;
- naive, keep: prometheus_client's documented recipe, `mark_process_dead` only
  (lab/scenarios/naive/keep_files.py): every dead worker's files stay;
- the lab: app/gunicorn.conf.py, which folds them into one archive per type.
"""

import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import requests

from app import multiproc
from app.signals import HTTP_REQUESTS, METHOD, ROUTE, STATUS

from .outcome import Chart, Line, Outcome, Panel, Row
from .running import INDEX, LAB_CONFIG, ScenarioError, gunicorn, naive_config, ready, resets, total

WORKERS = 2
MAX_REQUESTS = 5  # each worker exits after this many requests (scrapes included): a recycle every few
SCRAPE_EVERY = 5  # requests
SETUPS = {  # role, gunicorn config, label
    "delete": ("naive", naive_config("delete_files"), "delete the dead worker's files"),
    "keep": ("other", naive_config("keep_files"), "keep every file (mark_process_dead only)"),
    "lab": ("lab", LAB_CONFIG, "the lab: fold them into an archive"),
}


def read_ms(directory: Path) -> float:
    """What a scrape spends reading the directory: the lab's /metrics code (app/multiproc.py), timed here.

    Timed in this process rather than over HTTP: with workers recycling every few
    requests, a scrape often waits for one to boot, which would drown the read.
    """
    while True:
        began = time.perf_counter()
        try:
            multiproc.collect(str(directory))
        except FileNotFoundError:  # a naive setup removed a dead worker's file mid-read: read again
            continue
        return (time.perf_counter() - began) * 1000


def run(short: bool, logs: Path) -> Outcome:
    sent_total = 60 if short else 200
    settings = {
        "GUNICORN_WORKERS": WORKERS,
        "GUNICORN_MAX_REQUESTS": MAX_REQUESTS,
        "metrics": "prometheus",
    }
    labels = {METHOD: "GET", ROUTE: INDEX.template, STATUS: "200"}
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(gunicorn(name, logs, config, **settings))
            for name, (_, config, _) in SETUPS.items()
        }
        ready(*servers.values())
        sent = 0
        totals = {name: [] for name in servers}
        scrape_ms = {name: [] for name in servers}
        files = {name: [] for name in servers}
        failed = dict.fromkeys(servers, 0)  # scrapes answered 500
        while sent < sent_total:
            for _ in range(SCRAPE_EVERY):
                for server in servers.values():
                    if server.get(INDEX.template) != 200:
                        raise ScenarioError(f"{server.name}: GET / did not answer 200")
                sent += 1
            for name, server in servers.items():
                files[name].append((sent, server.files()))
                try:
                    totals[name].append((sent, total(server.scrape(), HTTP_REQUESTS.name, **labels)))
                except requests.HTTPError:  # deleting races the scrape: a file listed is gone when read
                    failed[name] += 1
                scrape_ms[name].append((sent, statistics.median(read_ms(server.multiproc) for _ in range(5))))
    final = {name: seen[-1][1] for name, seen in totals.items()}
    dropped = {name: resets([value for _, value in seen]) for name, seen in totals.items()}
    first_cost = {name: seen[0][1] for name, seen in scrape_ms.items()}
    cost = {name: seen[-1][1] for name, seen in scrape_ms.items()}
    left = {name: seen[-1][1] for name, seen in files.items()}

    def note(name: str) -> str:
        errors = f", {failed[name]} scrapes failed" if failed[name] else ""
        return (
            f"resets() {dropped[name]}{errors}, {left[name]:g} files, "
            f"a scrape reads them in {first_cost[name]:.1f} then {cost[name]:.1f} ms"
        )

    rows = [
        Row("truth", f"answered 200, counted by the client; recycles every {MAX_REQUESTS} requests", sent)
    ]
    rows += [Row(role, label, final[name], note(name)) for name, (role, _, label) in SETUPS.items()]
    rows.sort(key=lambda row: ("truth", "naive", "lab", "other").index(row.role))
    return Outcome(
        scenario="recycling-cleanup",
        unit="requests counted (GET /)",
        rows=rows,
        margin=(
            f"stated: deleting keeps only what the live workers counted, at most {WORKERS} x "
            f"{MAX_REQUESTS}, and counters go down; keeping every file costs a longer scrape at each "
            f"recycle; measured: {final['delete']:g} of {sent} counted, resets() {dropped['delete']}; "
            f"{left['keep']:g} files kept against the lab's {left['lab']:g}"
        ),
        why=(
            "In multiprocess mode each worker writes its own files, named by pid, and a scrape sums "
            "every file in the directory. With max_requests recycling, workers come and go: deleting "
            "a dead worker's files removes its counts from the totals, which Prometheus reads as a "
            "counter reset and rate() as a spike (and a scrape that lists a file deleted before it "
            "reads it fails with a 500); keeping them all, as prometheus_client does, keeps "
            "the totals right but adds two files per recycle that every scrape reads forever. The "
            "lab's master adds a dead worker's values into one archive file per type, under a lock "
            "the scrapes share, then deletes its files: exact totals and a bounded directory."
        ),
        reference=(
            "https://github.com/prometheus/client_python/issues/566 ; "
            "https://github.com/prometheus/client_python/pull/411 (deleting: counters go backwards)"
        ),
        fix="app/multiproc.py (archive_dead_process), app/gunicorn.conf.py (child_exit), app/MULTIPROCESS.md",
        short=short,
        details={
            "max_live_count": WORKERS * MAX_REQUESTS,
            "naive_resets": dropped["delete"],
            "lab_resets": dropped["lab"],
            "lab_failed_scrapes": failed["lab"],
            "keep_total": final["keep"],
            "keep_files": left["keep"],
            "lab_files": left["lab"],
        },
        chart=Chart(
            f"recycling-cleanup: {WORKERS} workers, each recycled after {MAX_REQUESTS} requests",
            "requests sent",
            [
                Panel(
                    "requests counted",
                    [Line("truth", "sent", [(0, 0), (sent, sent)])]
                    + [Line(role, label, totals[name]) for name, (role, _, label) in SETUPS.items()],
                ),
                Panel(
                    "ms a scrape spends reading them (median of 5)",
                    [Line(role, label, scrape_ms[name]) for name, (role, _, label) in SETUPS.items()],
                ),
                Panel(
                    "*.db files in the multiprocess directory",
                    [Line(role, label, files[name]) for name, (role, _, label) in SETUPS.items()],
                ),
            ],
        ),
    )
