"""no-multiprocess: prometheus_client's default registry under gunicorn with 4 workers.

The same app and traffic twice: under the lab's gunicorn config (one
multiprocess directory, summed on every scrape) and under a config without
one (lab/scenarios/naive/default_registry.py). Then both are scraped again
and again with nothing else going on: a scrape of the naive server answers
for the one worker that accepted it.
"""

from contextlib import ExitStack
from pathlib import Path

from app.signals import HTTP_REQUESTS, ROUTE

from .. import traffic
from .outcome import Chart, Line, Outcome, Panel, Row
from .running import ScenarioError, gunicorn, naive_config, ok, ready, resets, total

WORKERS = 4
PATH = "/database/"
# Each request holds its worker 10-20 ms: with 8 clients at once, every worker takes a share.
SLOW_ENOUGH = {"DB_DELAY_MIN_SECONDS": 0.01, "DB_DELAY_MAX_SECONDS": 0.02}
CLIENTS = 8
RATE = 200  # requests/s


def run(short: bool, logs: Path) -> Outcome:
    sent, scrapes = (200, 12) if short else (1000, 30)
    with ExitStack() as stack:
        naive = stack.enter_context(
            gunicorn(
                "naive",
                logs,
                naive_config("default_registry"),
                multiprocess=False,
                metrics="prometheus",
                GUNICORN_WORKERS=WORKERS,
                **SLOW_ENOUGH,
            )
        )
        lab = stack.enter_context(
            gunicorn("lab", logs, metrics="prometheus", GUNICORN_WORKERS=WORKERS, **SLOW_ENOUGH)
        )
        ready(naive, lab)
        for server in naive, lab:
            answered = ok(traffic.send(server.url + PATH, RATE, sent / RATE, threads=CLIENTS))
            if answered != sent:
                raise ScenarioError(f"{server.name}: {answered} of {sent} requests answered 200")
        seen = {naive.name: [], lab.name: []}
        for _ in range(scrapes):  # interleaved, on a new connection each: as Prometheus scrapes
            for server in naive, lab:
                seen[server.name].append(total(server.scrape(), HTTP_REQUESTS.name, **{ROUTE: PATH}))
    naive_seen, lab_seen = seen[naive.name], seen[lab.name]
    # The naive setup's best scrape against the lab's worst.
    best, worst = max(naive_seen), min(lab_seen)
    return Outcome(
        scenario="no-multiprocess",
        unit=f"requests counted (GET {PATH})",
        rows=[
            Row("truth", f"answered 200, counted by the client ({CLIENTS} at a time)", sent),
            Row(
                "naive",
                f"default registry, {WORKERS} workers (lab/scenarios/naive/default_registry.py): "
                "the highest scrape",
                best,
                f"{scrapes} scrapes read {min(naive_seen):g} to {best:g}; resets() sees {resets(naive_seen)}",
            ),
            Row(
                "lab",
                f"multiprocess directory, summed on every scrape ({WORKERS} workers): the lowest scrape",
                worst,
                f"all {scrapes} scrapes" if worst == max(lab_seen) else f"up to {max(lab_seen):g}",
            ),
        ],
        margin=(
            f"stated: even the highest of the naive scrapes misses at least half of the requests "
            f"(each worker took about 1/{WORKERS}); measured: {best / sent:.0%} of the truth"
        ),
        why=(
            "Without PROMETHEUS_MULTIPROC_DIR each gunicorn worker keeps its counters in its own memory, "
            "and /metrics is answered by whichever worker accepts the scrape: every scrape is one "
            "worker's share, a different one each time. Prometheus stores the jumps down as counter "
            "resets, so rate() and increase() are wrong too. In multiprocess mode every worker writes "
            "its values to files in one directory and a scrape sums them all."
        ),
        reference=(
            "https://prometheus.github.io/client_python/multiprocess/ ; "
            "https://github.com/prometheus/client_python/issues/751"
        ),
        fix="app/gunicorn.conf.py (the directory, wiped at start), app/multiproc.py (the summing scrape)",
        short=short,
        details={"workers": WORKERS, "naive_resets": resets(naive_seen)},
        chart=Chart(
            f"no-multiprocess: /metrics read {scrapes} times after {sent} requests",
            "scrape",
            [
                Panel(
                    "requests counted",
                    [
                        Line("truth", "sent", [(1, sent), (scrapes, sent)]),
                        Line("naive", "default registry", list(enumerate(naive_seen, 1))),
                        Line("lab", "the lab (multiprocess)", list(enumerate(lab_seen, 1))),
                    ],
                )
            ],
        ),
    )
