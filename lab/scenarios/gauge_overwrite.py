"""gauge-overwrite: each worker sends its in-flight count as an absolute StatsD gauge.

Two servers of the app, 4 sync workers each, pushing to one StatsD daemon
that flushes into Graphite: one sends the in-flight gauge the usual way
(lab/scenarios/naive/absolute_gauge.py: each worker its own count, absolute),
the lab's sends each worker's changes as deltas (app/push.py). Then as many
slow requests as workers are held open on each: a sync worker takes one
request at a time, so every worker holds one, and the client knows how many
are in flight.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from app.signals import STATSD_PREFIX

from ..queries import PushQueries
from ..settings import LOOPBACK
from .outcome import Chart, Line, Outcome, Panel, Row, shifted
from .running import ScenarioError, gunicorn, naive_config, push_stack, ready

WORKERS = 4
FLUSH = 1  # s
GAUGE_INTERVAL = 0.2  # s: how often the lab's workers push their deltas (STATSD_GAUGE_INTERVAL)
NAIVE_PREFIX = "naive.app"
SLOW_PATH = "/database/"


def run(short: bool, logs: Path) -> Outcome:
    hold = 5 if short else 10  # s each held request takes (the database delay): read well before
    prefixes = {"naive": NAIVE_PREFIX, "lab": STATSD_PREFIX}
    with ExitStack() as stack:
        push = stack.enter_context(push_stack(logs, FLUSH))
        common = {
            "GUNICORN_WORKERS": WORKERS,
            "STATSD_HOST": LOOPBACK,
            "STATSD_PORT": push.statsd_port,
            "DB_DELAY_MIN_SECONDS": hold,
            "DB_DELAY_MAX_SECONDS": hold,
        }
        naive = stack.enter_context(
            gunicorn(
                "naive",
                logs,
                naive_config("absolute_gauge"),
                metrics="off",
                STATSD_PREFIX=NAIVE_PREFIX,
                **common,
            )
        )
        lab = stack.enter_context(
            gunicorn("lab", logs, metrics="statsd", STATSD_GAUGE_INTERVAL=GAUGE_INTERVAL, **common)
        )
        ready(naive, lab)
        targets = {name: PushQueries(prefix).in_flight_series() for name, prefix in prefixes.items()}
        with ThreadPoolExecutor(2 * WORKERS) as pool:
            start = time.time()
            held = {
                server.name: [pool.submit(server.get, SLOW_PATH) for _ in range(WORKERS)]
                for server in (naive, lab)
            }
            # A flush after every worker has sent its start (the lab's, its first delta).
            push.flushed_after(start + 2 * GAUGE_INTERVAL)
            # At the client: sent and not answered yet, on each server.
            in_flight = {
                name: sum(not request.done() for request in requests) for name, requests in held.items()
            }
            read = {name: push.graphite.points(target, start) for name, target in targets.items()}
            statuses = {request.result() for requests in held.values() for request in requests}
        end = time.time()
        if statuses != {200} or in_flight["naive"] != in_flight["lab"]:
            raise ScenarioError(f"the held requests: {in_flight} in flight when read, answered {statuses}")
        push.flushed_after(end)
        over_time = {
            name: push.graphite.points(target, start - 2 * FLUSH) for name, target in targets.items()
        }
    # The last flush before the read: what a dashboard showed while the requests were held.
    shown = {name: points[-1][1] for name, points in read.items()}
    truth = in_flight["lab"]
    return Outcome(
        scenario="gauge-overwrite",
        unit="requests in flight",
        rows=[
            Row(
                "truth",
                f"sent and not yet answered, at the client ({WORKERS} held on {WORKERS} workers)",
                truth,
            ),
            Row(
                "naive", "each worker sends its own count as the gauge's value (1 when busy)", shown["naive"]
            ),
            Row("lab", "each worker sends its changes (+1, -1), StatsD adds them up", shown["lab"]),
        ],
        margin=(
            f"stated: the naive gauge is one worker's count, at most 1/{WORKERS} of the truth here; "
            f"measured: {shown['naive']:g} of {truth:g}"
        ),
        why=(
            "A StatsD gauge holds the last value it received. When every worker sends its own count as "
            "an absolute value, each send overwrites the others: the gauge shows whichever worker spoke "
            "last, here 1 while every worker was busy. Sent as signed deltas, StatsD adds the workers' "
            "changes into one sum (the lab also pushes them off the request path, and takes a stopping "
            "worker's share out)."
        ),
        reference="https://github.com/statsd/statsd/blob/master/docs/metric_types.md#gauges",
        fix="app/push.py (PushRecorder.push_in_flight, worker_stopping)",
        short=short,
        details={"workers": WORKERS},
        chart=Chart(
            f"gauge-overwrite: {WORKERS} requests held {hold} s on {WORKERS} workers",
            "seconds since the requests were sent",
            [
                Panel(
                    "requests in flight",
                    [
                        Line(
                            "truth",
                            "at the client",
                            [(-2 * FLUSH, 0), (0, truth), (end - start, 0)],
                            steps=True,
                        ),
                        Line("naive", "absolute per worker", shifted(over_time["naive"], start), steps=True),
                        Line("lab", "deltas (the lab)", shifted(over_time["lab"], start), steps=True),
                    ],
                )
            ],
        ),
    )
