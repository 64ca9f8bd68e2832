"""flush-vs-retention: StatsD flushing more often than whisper's finest step.

One StatsD daemon flushing every FLUSH s into one carbon; two servers of the
lab's app under the same steady traffic, pushing under two prefixes. The
lab's prefix gets the lab's storage schemas (finest StatsD step = the flush
interval, lab/stack/native_config.py); the naive prefix gets a finest step of
STEPS_PER_SLOT flushes, as with StatsD's default 10 s flush into a 1-minute
archive. The counts per flush are then summed from graphite-web.
"""

import re
import threading
import time
from pathlib import Path

from app.signals import STATSD_PREFIX

from .. import traffic
from ..queries import PushQueries
from ..settings import LOOPBACK
from ..stack.native_config import storage_schemas
from .outcome import Chart, Line, Outcome, Panel, Row, shifted
from .running import INDEX, ScenarioError, gunicorn, ok, push_stack, ready, settled

FLUSH = 1  # s: the ratio is what matters (10 s into 60 s is the same mistake, 10 times slower)
STEPS_PER_SLOT = 6
NAIVE_PREFIX = "naive.app"
LAB_PREFIX = STATSD_PREFIX  # the app's default
RATE = 20  # requests/s to each server


def schemas() -> str:
    """The lab's schemas, after a first section that gives the naive prefix a coarser finest step."""
    naive = rf"^stats(_counts)?\.{re.escape(NAIVE_PREFIX)}\."
    return (
        "# The naive setup: StatsD series kept at a step of several flushes (carbon's first match wins).\n"
        f"[naive]\npattern = {naive}\nretentions = {FLUSH * STEPS_PER_SLOT}s:1d\n\n" + storage_schemas(FLUSH)
    )


def run(short: bool, logs: Path) -> Outcome:
    seconds = 12 if short else 36
    prefixes = {"naive": NAIVE_PREFIX, "lab": LAB_PREFIX}
    with push_stack(logs, FLUSH, schemas()) as push:
        pushing = {"metrics": "statsd", "STATSD_HOST": LOOPBACK, "STATSD_PORT": push.statsd_port}
        with (
            gunicorn("naive", logs, STATSD_PREFIX=NAIVE_PREFIX, GUNICORN_WORKERS=1, **pushing) as naive,
            gunicorn("lab", logs, STATSD_PREFIX=LAB_PREFIX, GUNICORN_WORKERS=1, **pushing) as lab,
        ):
            ready(naive, lab)
            answered = {}

            def load(name, server) -> None:
                answered[name] = ok(traffic.send(server.url + INDEX.template, RATE, seconds))

            start = time.time()
            loads = [threading.Thread(target=load, args=item) for item in (("naive", naive), ("lab", lab))]
            for thread in loads:
                thread.start()
            for thread in loads:
                thread.join()
            end = time.time()
        if answered["naive"] != answered["lab"]:
            raise ScenarioError(
                f"the two servers answered {answered['naive']} and {answered['lab']} requests"
            )
        push.flushed_after(end)
        # From a slot before the traffic: the naive step's slot that holds its start begins earlier.
        since = start - FLUSH * STEPS_PER_SLOT
        targets = {
            name: PushQueries(prefix).requests(INDEX.endpoint, "GET", "200", per_second=False)
            for name, prefix in prefixes.items()
        }
        counted = settled(
            lambda: {name: push.graphite.total(target, since) for name, target in targets.items()}, FLUSH
        )
        points = {name: push.graphite.points(target, since) for name, target in targets.items()}
    truth = answered["lab"]
    step = FLUSH * STEPS_PER_SLOT
    return Outcome(
        scenario="flush-vs-retention",
        unit="requests counted (GET /)",
        rows=[
            Row("truth", f"answered 200, counted by the client ({RATE}/s for {seconds} s)", truth),
            Row("naive", f"StatsD flush {FLUSH} s into a finest whisper step of {step} s", counted["naive"]),
            Row("lab", f"StatsD flush {FLUSH} s into a finest step of {FLUSH} s (matched)", counted["lab"]),
        ],
        margin=(
            f"stated: carbon keeps one flush per slot, so about {STEPS_PER_SLOT}x low; measured: "
            + (f"{truth / counted['naive']:.1f}x low" if counted["naive"] else "nothing kept")
        ),
        why=(
            "StatsD sends each counter once per flush, as the count of that flush. Whisper keeps one "
            "value per slot of its finest step and a later write to a slot replaces the earlier one: "
            f"with {STEPS_PER_SLOT} flushes per slot, only the last survives and sums come out about "
            f"{STEPS_PER_SLOT} times low, with no error anywhere (StatsD's default 10 s flush into a "
            "1-minute archive does exactly this). With the finest step equal to the flush interval, "
            "every flush has a slot of its own and the sum is exact."
        ),
        reference="https://github.com/statsd/statsd/blob/master/docs/graphite.md (storage schemas)",
        fix="graphite/storage-schemas.conf, lab/stack/native_config.py (storage_schemas follows the flush)",
        short=short,
        details={"steps_per_slot": STEPS_PER_SLOT},
        chart=Chart(
            f"flush-vs-retention: StatsD flushing every {FLUSH} s, {RATE} requests/s",
            "seconds since the traffic started",
            [
                Panel(
                    "requests counted per stored point",
                    [
                        Line("naive", f"finest step {step} s", shifted(points["naive"], start), steps=True),
                        Line("lab", f"finest step {FLUSH} s", shifted(points["lab"], start), steps=True),
                    ],
                )
            ],
        ),
    )
