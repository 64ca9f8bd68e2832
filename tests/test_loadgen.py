"""loadgen/locustfile.py: the real Locust against the real app under gunicorn.

Locust knows exactly what it sent, so the app must have counted exactly that:
per request name, the same number in `http_requests_total` under the route
and status the mix means, and nothing else on those routes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import ROOT, free_port, gunicorn

LOCUSTFILE = ROOT / "loadgen" / "locustfile.py"
LOCUST = Path(sys.executable).parent / "locust"  # the dev extra's pin, the loadgen image's version

# Locust's request name -> the app's `route` label and the status that request means.
MIX = {
    "/": ("/", "200"),
    "/database/": ("/database/", "200"),
    "unmatched": ("unmatched", "404"),
    "/error/": ("/error/", "500"),
}
AVAILABILITY_SLO = 0.995  # prometheus/rules: 99.5 % of the app's requests without a 5xx
SLOWEST_BURN_ALERT = 3  # AvailabilitySLOSlowBurn tickets at 3x the budget


def locust(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run Locust with only the test's options (no locust.conf, no LOCUST_* of a developer's)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
    return subprocess.run(
        [str(LOCUST), "--locustfile", str(LOCUSTFILE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def requests_by_route(scraped: dict) -> dict[str, dict[tuple[str, str], float]]:
    """Group `http_requests_total` as route -> {(method, status): count}."""
    routes: dict[str, dict[tuple[str, str], float]] = {}
    for (name, labels), count in scraped.items():
        if name == "http_requests_total":
            label = dict(labels)
            routes.setdefault(label["route"], {})[(label["method"], label["status"])] = count
    return routes


def test_the_mix_is_mostly_index_and_keeps_the_5xx_under_the_slo_alerts(tmp_path):
    result = locust("--show-task-ratio-json", "--users", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ratios = {
        task: share["ratio"]
        for task, share in json.loads(result.stdout)["total"]["LabVisitor"]["tasks"].items()
    }
    assert set(ratios) == {"index", "database", "unmatched", "error"}
    assert ratios["index"] >= 0.8
    assert min(ratios.values()) > 0  # every golden-signal panel gets data
    # The baseline spends error budget visibly but pages no one: an injected fault stands out.
    assert ratios["error"] < SLOWEST_BURN_ALERT * (1 - AVAILABILITY_SLO)


def test_the_app_counts_exactly_what_locust_sent(tmp_path):
    with gunicorn(
        DB_DELAY_MIN_SECONDS="0",
        DB_DELAY_MAX_SECONDS="0.01",
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(free_port()),  # nobody reads it: pushes are not under test here
        GUNICORN_WORKERS="2",
    ) as app:
        result = locust(
            "--headless",
            "--host",
            app.url,
            "--users",
            "20",
            "--spawn-rate",
            "20",
            "--run-time",
            "4s",
            # Let each user finish the request it is sending when the time is up:
            # without this Locust kills it mid-flight, the app still answers (and
            # counts) it, and Locust does not.
            "--stop-timeout",
            "5",
            # every route a quarter of the time, so a short run hits them all
            "--equal-weights",
            "--only-summary",
            "--json-file",
            str(tmp_path / "stats"),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]  # 1 on any failure
        routes = requests_by_route(app.scrape())

    sent = json.loads((tmp_path / "stats.json").read_text())
    assert {entry["name"] for entry in sent} == set(MIX)
    for entry in sent:
        route, status = MIX[entry["name"]]
        assert entry["method"] == "GET"
        assert entry["num_failures"] == 0, entry["name"]
        assert entry["num_requests"] > 0, entry["name"]
        assert routes.get(route) == {("GET", status): entry["num_requests"]}, entry["name"]
