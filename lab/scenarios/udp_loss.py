"""udp-loss: the StatsD daemon down for a while under steady traffic.

The lab's app (both pipelines on) under steady traffic in three phases: the
real StatsD daemon up, stopped, then a fresh one on the same port. Push is
read from the daemons' own counters (their admin interface, before the first
one stops and at the end), pull from one scrape at the end.
"""

import socket
import time
from itertools import accumulate
from pathlib import Path

from app.signals import HTTP_REQUESTS, METHOD, ROUTE, STATSD_PREFIX, STATSD_REQUESTS, STATUS

from .. import traffic
from ..polling import wait_for
from ..settings import LOOPBACK, free_port
from ..stack.statsd_daemon import StatsdDaemon, statsd_daemon
from .outcome import Chart, Line, Outcome, Panel, Row
from .running import INDEX, ScenarioError, gunicorn, ok, ready, settled, total

RATE = 40  # requests/s
WORKERS = 2
PROBE = "scenario.probe"  # a counter of the scenario's own, sent until the new daemon counts it


def run(short: bool, logs: Path) -> Outcome:
    seconds = 2 if short else 10
    port = free_port(socket.SOCK_DGRAM)
    labels = {METHOD: "GET", ROUTE: INDEX.template, STATUS: "200"}
    counter = f"{STATSD_PREFIX}.{STATSD_REQUESTS.format(endpoint=INDEX.endpoint, method='GET', status=200)}"
    sent, pushed = [], []  # per phase: answered 200, counted by StatsD
    ends, pulled = [0.0], [0.0]  # at the start and the end of each phase: seconds, pull's total

    def phase(daemon: StatsdDaemon | None) -> None:
        sent.append(ok(traffic.send(lab.url + INDEX.template, RATE, seconds)))
        # Each datagram left before its answer; the daemon may still be reading the last ones.
        pushed.append(settled(lambda: counted(daemon, counter), 0.5) if daemon else 0.0)
        ends.append(time.monotonic() - started)
        pulled.append(total(lab.scrape(), HTTP_REQUESTS.name, **labels))

    with gunicorn(
        "lab",
        logs,
        metrics="prometheus,statsd",
        GUNICORN_WORKERS=WORKERS,
        STATSD_HOST=LOOPBACK,
        STATSD_PORT=port,
    ) as lab:
        with statsd_daemon(port) as daemon:
            ready(lab)
            started = time.monotonic()
            phase(daemon)
        phase(None)  # nothing listens on the port: the app's datagrams are dropped
        with statsd_daemon(port) as daemon:
            listening(daemon)
            phase(daemon)
    truth, down = sum(sent), sent[1]
    return Outcome(
        scenario="udp-loss",
        unit="requests counted (GET /)",
        rows=[
            Row("truth", f"answered 200, counted by the client ({RATE}/s in 3 phases of {seconds} s)", truth),
            Row("naive", "push: the StatsD daemons' counters, before the stop and at the end", sum(pushed)),
            Row("lab", "pull: a scrape of the multiprocess counters at the end", pulled[-1]),
            Row("other", "sent while StatsD was down (the middle phase)", down),
        ],
        margin=(
            f"stated: push misses exactly what was sent while StatsD was down; measured: "
            f"{truth - sum(pushed):g} missed, {down} sent meanwhile"
        ),
        why=(
            "StatsD's UDP is fire and forget: the app's send returns as soon as the kernel takes the "
            "datagram, whoever listens, so a daemon that is down (restarting, redeployed, crashed) "
            "costs nothing on the request path and loses every count sent meanwhile, with no error "
            "anywhere. Pull keeps the counts in the app (here in the multiprocess files); a scrape "
            "missed while the scraper is down is read whole at the next one. The lab sends both and "
            "counts with pull; push is for what StatsD and Graphite add."
        ),
        reference=(
            "https://github.com/statsd/statsd/issues/245 (UDP chosen for fire and forget) ; "
            "https://prometheus.io/docs/introduction/faq/#why-do-you-pull-rather-than-push"
        ),
        fix="app/pull.py (the counts stay in the app until scraped); app/push.py says what push trades",
        short=short,
        details={"sent_while_down": down},
        chart=Chart(
            "udp-loss: StatsD up, down, up again",
            "seconds since the start",
            [
                Panel(
                    "requests counted, cumulative",
                    [
                        Line("truth", "sent", along(ends, accumulate(sent, initial=0))),
                        Line("naive", "push (StatsD)", along(ends, accumulate(pushed, initial=0))),
                        Line("lab", "pull (scrape)", along(ends, pulled)),
                    ],
                )
            ],
        ),
    )


def counted(daemon: StatsdDaemon, counter: str) -> float:
    counters = daemon.counters()
    if not counters:  # it always holds its own (statsd.packets_received...): it did not answer
        raise ScenarioError("the StatsD daemon's admin interface did not answer")
    return counters.get(counter, 0.0)


def along(times: list[float], values) -> list[tuple[float, float]]:
    return list(zip(times, values, strict=True))


def listening(daemon: StatsdDaemon, timeout: float = 10.0) -> None:
    """Return once the daemon counts what reaches its UDP port (it says "up" before it binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

        def probe() -> dict:
            sock.sendto(f"{PROBE}:1|c".encode(), (LOOPBACK, daemon.port))
            return daemon.counters()

        if PROBE not in wait_for(probe, lambda counters: PROBE in counters, timeout, interval=0.05):
            raise ScenarioError(f"the restarted StatsD daemon did not count a datagram in {timeout:g} s")
