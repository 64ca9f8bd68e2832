"""percentile-averaging: the average of per-flush p99s taken for the p99 of the window.

The lab's app (both pipelines on) under steady traffic to `/`, with one
latency burst of about one flush (an injected fault, app/faults.py). StatsD
computes `upper_99` per flush; the naive reading averages those over the
window, as a zoomed-out panel or carbon's default `average` roll-up does. The
lab's reading is histogram_quantile over the histogram's buckets, summed over
workers and taken as the increase over the window (computed here from two
scrapes, as Prometheus would from its samples). The truth is the p99 of what
the client waited.
"""

import math
import secrets
import statistics
import threading
import time
from pathlib import Path

from app.signals import HTTP_REQUEST_DURATION, METHOD, ROUTE, STATSD_PREFIX

from .. import traffic
from ..fault_control import FaultControl
from ..queries import PushQueries
from ..settings import LOOPBACK
from .outcome import Chart, Line, Outcome, Panel, Row, shifted
from .running import INDEX, ScenarioError, gunicorn, ok, push_stack, ready

FLUSH = 1  # s
RATE = 10  # requests/s: 4 workers keep up even while each request is held LATENCY_MS
WORKERS = 4
LATENCY_MS = 270  # the burst's added latency: in the (0.25, 0.3] bucket of app/signals.py
Q = 0.99


def run(short: bool, logs: Path) -> Outcome:
    seconds, burst_at = (6, 2) if short else (30, 12)
    token = secrets.token_urlsafe(16)
    with push_stack(logs, FLUSH) as push:
        with gunicorn(
            "lab",
            logs,
            metrics="prometheus,statsd",
            GUNICORN_WORKERS=WORKERS,
            LAB_ADMIN_TOKEN=token,
            STATSD_HOST=LOOPBACK,
            STATSD_PORT=push.statsd_port,
        ) as lab:
            ready(lab)
            faults = FaultControl(lab.url, token)
            before = buckets(lab.scrape())
            burst = [
                threading.Timer(burst_at, faults.replace, [{"latency_ms": LATENCY_MS}]),
                threading.Timer(burst_at + FLUSH, faults.clear),
            ]
            start = time.time()
            for timer in burst:
                timer.start()
            answers = traffic.send(lab.url + INDEX.template, RATE, seconds)
            for timer in burst:
                timer.join()
            end = time.time()
            after = buckets(lab.scrape())
        if ok(answers) != len(answers):
            raise ScenarioError(f"{len(answers) - ok(answers)} of {len(answers)} requests failed")
        push.flushed_after(end)
        target = PushQueries(STATSD_PREFIX).timer(INDEX.endpoint, "GET", f"upper_{Q * 100:.0f}")
        per_flush = push.graphite.points(target, start - FLUSH)
    waited_ms = sorted(answer.seconds * 1000 for answer in answers)
    truth = statistics.quantiles(waited_ms, n=100, method="inclusive")[round(Q * 100) - 1]
    naive = statistics.mean(value for _, value in per_flush)
    lab_estimate = histogram_quantile(Q, {le: after[le] - before.get(le, 0) for le in after}) * 1000
    slow = sum(ms >= LATENCY_MS for ms in waited_ms)
    return Outcome(
        scenario="percentile-averaging",
        unit="ms, p99 latency of GET /",
        rows=[
            Row(
                "truth",
                f"p99 of what the client waited ({len(answers)} requests, {slow} slowed by the burst)",
                truth,
            ),
            Row("naive", f"mean of StatsD's per-flush upper_99 ({len(per_flush)} flushes)", naive),
            Row("lab", "histogram_quantile(0.99) over the buckets summed over workers", lab_estimate),
            Row("other", "the highest per-flush upper_99", max(value for _, value in per_flush)),
        ],
        margin=(
            f"stated: the mean of per-flush p99s is below half the p99 once the slow requests sit in "
            f"one flush and exceed 1% of the window; measured: {naive / truth:.0%} of it, the lab's "
            f"estimate {lab_estimate / truth:.0%}"
        ),
        why=(
            "A percentile does not average: the p99 of a window is the value 1% of all its requests "
            "exceed, and a burst that is the whole tail of one flush is a tenth of the mean of the "
            "flushes' p99s. The same goes for averaging per-worker or per-instance quantiles (a "
            "Summary's, or StatsD's per host). A histogram keeps counts per bucket, and counts add up: "
            "summed over workers and over the window, the buckets give the window's quantile, off "
            "by at most the width of the bucket it falls in."
        ),
        reference=(
            "https://prometheus.io/docs/practices/histograms/#quantiles ; "
            "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile"
        ),
        fix="lab/queries.py (PullQueries.latency), app/signals.py (LATENCY_BUCKETS, an edge at 0.3 s)",
        short=short,
        chart=Chart(
            f"percentile-averaging: {RATE} requests/s, +{LATENCY_MS} ms for about {FLUSH} s",
            "seconds since the traffic started",
            [
                Panel(
                    "ms",
                    [
                        Line("other", "upper_99 of each flush", shifted(per_flush, start), steps=True),
                        Line("truth", "p99 of the window, at the client", [(0, truth), (end - start, truth)]),
                        Line("naive", "mean of the flushes' upper_99", [(0, naive), (end - start, naive)]),
                        Line("lab", "histogram_quantile", [(0, lab_estimate), (end - start, lab_estimate)]),
                    ],
                )
            ],
        ),
    )


def buckets(samples) -> dict[float, float]:
    """The request histogram's cumulative buckets for GET /, summed over workers: upper bound -> count."""
    counts = {}
    for sample in samples:
        if (
            sample.name == HTTP_REQUEST_DURATION.name + "_bucket"
            and sample.labels[METHOD] == "GET"
            and sample.labels[ROUTE] == INDEX.template
        ):
            le = float(sample.labels["le"])
            counts[le] = counts.get(le, 0) + sample.value
    return counts


def histogram_quantile(q: float, cumulative: dict[float, float]) -> float:
    """PromQL's histogram_quantile over cumulative buckets (upper bound -> count, +Inf included).

    Linear within the bucket the rank falls in, from 0 for the first; in the
    +Inf bucket, the highest finite bound (Prometheus's rules).
    """
    bounds = sorted(cumulative)
    rank = q * cumulative[math.inf]
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = cumulative[upper]
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    raise ValueError("no +Inf bucket")
