"""raw-path-labels: labelling requests by the raw path the client sent.

The same traffic to two servers of the same app: prometheus_flask_exporter's
GunicornPrometheusMetrics with its defaults (lab/peers/flask_exporter.py: its
request histogram is labelled by `request.path`) and the lab's instrumentation
(labelled by the URL rule a request matched, app/labels.py). The traffic is
what a public service gets: its pages, and paths nobody routes (scanners,
typos, ids in URLs that do not exist), a new one every few requests.
"""

from contextlib import ExitStack
from pathlib import Path

from app.signals import HTTP_REQUESTS, METHOD, ROUTE, STATUS, UNMATCHED

from .outcome import Chart, Line, Outcome, Panel, Row
from .running import gunicorn, ready

WORKERS = 2
FAST = {"DB_DELAY_MIN_SECONDS": 0, "DB_DELAY_MAX_SECONDS": 0}
# The app's pages, each with the URL rule it matches; the rest match none.
PAGES = (("/", "/"), ("/database/", "/database/"))
# prometheus_flask_exporter's request histogram (its counter has no path label), one series per label set.
PEER_SERIES = "flask_http_request_duration_seconds_count"
PEER_PATH = "path"  # its label for the path, group_by="path" by default
# Requests that are not the scenario's traffic: the readiness check, and the lab's scrapes of itself.
NOT_TRAFFIC = frozenset({"/healthz", "/metrics/"})


def run(short: bool, logs: Path) -> Outcome:
    batches, per_page = (5, 10) if short else (20, 10)
    with ExitStack() as stack:
        naive = stack.enter_context(
            gunicorn(
                "naive",
                logs,
                "python:lab.peers.flask_exporter",
                peer_metrics=True,
                metrics="off",
                GUNICORN_WORKERS=WORKERS,
                **FAST,
            )
        )
        lab = stack.enter_context(
            gunicorn("lab", logs, metrics="prometheus", GUNICORN_WORKERS=WORKERS, **FAST)
        )
        ready(naive, lab)
        hit = set()  # (method, URL rule, status) of every request: the series a request counter needs
        sent, growth = 0, {"truth": [], "naive": [], "lab": []}
        unknown = 0
        for _ in range(batches):
            # per page `per_page` requests, and as many to paths nobody routes, each new
            traffic = [(path, rule) for path, rule in PAGES for _ in range(per_page)]
            for _ in range(per_page):
                unknown += 1
                traffic.append((f"/posts/{unknown}", UNMATCHED))
            for path, rule in traffic:
                statuses = {server.get(path) for server in (naive, lab)}
                hit |= {("GET", rule, status) for status in statuses}
            sent += len(traffic)
            growth["truth"].append((sent, len(hit)))
            growth["naive"].append((sent, series(naive.scrape(), PEER_SERIES, PEER_PATH)))
            growth["lab"].append((sent, series(lab.scrape(), HTTP_REQUESTS.name, ROUTE)))
    truth, naive_series, lab_series = (growth[role][-1][1] for role in ("truth", "naive", "lab"))
    return Outcome(
        scenario="raw-path-labels",
        unit="series of the request metric",
        rows=[
            Row(
                "truth",
                f"({METHOD}, URL rule, {STATUS}) of the client's {sent} requests ({unknown} paths, no rule)",
                truth,
            ),
            Row("naive", "prometheus_flask_exporter, labelled by request.path (its default)", naive_series),
            Row("lab", "labelled by the URL rule matched, `unmatched` for none (app/labels.py)", lab_series),
        ],
        margin=(
            f"stated: a series per path that matches no rule, where one serves them all: {unknown - 1} more "
            f"than needed for {unknown} such paths; measured: {naive_series - truth:g} more"
        ),
        why=(
            "Every distinct label value is a time series of its own, kept in memory and on disk by "
            "Prometheus and summed on every scrape. A raw path is chosen by the client: scanners, typos "
            "and ids in URLs make one series each, without bound, for requests that deserve one line "
            "(404 on no route). Labelling by the URL rule the framework matched keeps the set closed: "
            "one series per route, method and status the app has, whatever clients send."
        ),
        reference=(
            "https://prometheus.io/docs/practices/naming/#labels (no unbounded sets of values) ; "
            "https://github.com/rycus86/prometheus_flask_exporter#default-metrics (group_by)"
        ),
        fix="app/labels.py (URL rule, bounded method and status), app/instrumentation.py",
        short=short,
        details={"paths_without_rule": unknown},
        chart=Chart(
            "raw-path-labels: series as traffic goes on",
            "requests sent",
            [
                Panel(
                    "series of the request metric",
                    [
                        Line("truth", "(method, rule, status) hit", growth["truth"]),
                        Line("naive", "labelled by raw path", growth["naive"]),
                        Line("lab", "labelled by URL rule", growth["lab"]),
                    ],
                )
            ],
        ),
    )


def series(samples, name: str, path_label: str) -> int:
    """The label sets of the samples named `name`, the requests of the scenario's traffic only."""
    return len(
        {
            frozenset(sample.labels.items())
            for sample in samples
            if sample.name == name and sample.labels[path_label] not in NOT_TRAFFIC
        }
    )
