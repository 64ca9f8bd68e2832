"""loadgen/: the real Locust against the real app under gunicorn, and the options it runs with.

Locust knows exactly what it sent, so the app must have counted exactly that:
per request name, the same number in `http_requests_total` under the route
and status the mix means, and nothing else on those routes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.settings import Ports
from lab.stack import ha, native_config, services

from .helpers import ROOT, free_port, gunicorn

LOCUSTFILE = ROOT / "loadgen" / "locustfile.py"
LOCUST_CONF = ROOT / "loadgen" / "locust.conf"
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


def locust_env(home: Path) -> dict[str, str]:
    """The environment without what Locust reads besides its arguments: LOCUST_* and ~/.locust.conf."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
    return {**env, "HOME": str(home)}


def locust(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run Locust with only the test's options (cwd has no locust.conf)."""
    return subprocess.run(
        [str(LOCUST), "--locustfile", str(LOCUSTFILE), *args],
        cwd=cwd,
        env=locust_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def locust_options(argv: list[str], cwd: Path) -> dict:
    """The options Locust's own parser (the one `locust` runs) makes of argv.

    In a process of its own: importing locust patches the standard library for gevent.
    """
    script = (
        "import json, sys\n"
        "from locust.argument_parser import get_parser\n"
        "print(json.dumps(vars(get_parser().parse_args(sys.argv[1:])), default=str))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=cwd,
        env=locust_env(cwd),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def requests_by_route(scraped: dict) -> dict[str, dict[tuple[str, str], float]]:
    """Group `http_requests_total` as route -> {(method, status): count}."""
    routes: dict[str, dict[tuple[str, str], float]] = {}
    for (name, labels), count in scraped.items():
        if name == "http_requests_total":
            label = dict(labels)
            routes.setdefault(label["route"], {})[(label["method"], label["status"])] = count
    return routes


@pytest.mark.processes
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


@pytest.mark.processes
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


def test_compose_and_the_native_stack_run_locust_with_the_same_config_file():
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["loadgen"]
    (mount,) = service["volumes"]
    source, target = mount.split(":")[:2]
    (config,) = [arg.removeprefix("--config=") for arg in service["command"] if arg.startswith("--config=")]
    assert ROOT / source / Path(config).relative_to(target) == LOCUST_CONF
    native = native_config.loadgen_argv(Ports.from_env({}, dotenv=ROOT / "no-such-file"))
    assert f"--config={LOCUST_CONF}" in native


RUN_OPTIONS = ("num_users", "spawn_rate", "autostart", "headless", "stop_timeout")


@pytest.mark.processes
def test_locust_reads_the_runs_options_from_locust_conf(tmp_path):
    ports = Ports.from_env({}, dotenv=ROOT / "no-such-file")
    options = locust_options(native_config.loadgen_argv(ports), cwd=tmp_path)
    # What the README promises: 5 users = 5 requests per second, ramped at 1 user
    # a second, sending from the start with the web UI kept, in-flight requests
    # let finish on stop.
    assert {name: options[name] for name in RUN_OPTIONS} == {
        "num_users": 5,
        "spawn_rate": 1.0,
        "autostart": True,
        "headless": False,
        "stop_timeout": 5,
    }
    # the addresses come from the command line
    assert options["locustfile"] == str(LOCUSTFILE)
    assert options["host"] == f"http://127.0.0.1:{ports.app}"
    assert (options["web_host"], options["web_port"]) == ("127.0.0.1", ports.loadgen)


@pytest.mark.processes
def test_without_the_config_file_locust_would_run_none_of_it(tmp_path):
    # so the values above are the file's, not Locust's defaults
    options = locust_options(["--locustfile", str(LOCUSTFILE)], cwd=tmp_path)
    assert {name: options[name] for name in RUN_OPTIONS} == {
        "num_users": None,
        "spawn_rate": None,
        "autostart": False,
        "headless": False,
        "stop_timeout": 0,
    }


def test_native_ha_spreads_the_users_over_both_app_instances(tmp_path):
    ports = Ports.from_env({})
    topology = ha.Topology(ports, ha.HaPorts.from_env({}))
    single = services.services(ports, tmp_path, {}, loadgen=True)
    (loadgen,) = [s for s in services.ha_services(single, topology, tmp_path, None) if s.name == "loadgen"]
    assert loadgen.env["LOADGEN_HOSTS"] == ",".join(f"http://127.0.0.1:{port}" for port in topology.apps)
    (alone,) = [s for s in single if s.name == "loadgen"]
    assert "LOADGEN_HOSTS" not in alone.env  # a single node: every user sends to --host


@pytest.mark.processes
def test_loadgen_hosts_splits_the_users_and_the_apps_count_what_locust_sent(tmp_path):
    env = {"DB_DELAY_MIN_SECONDS": "0", "DB_DELAY_MAX_SECONDS": "0.01", "GUNICORN_WORKERS": "1"}
    with (
        gunicorn(**env, STATSD_PORT=str(free_port())) as one,
        gunicorn(**env, STATSD_PORT=str(free_port())) as two,
    ):
        stats = tmp_path / "stats"
        command = [str(LOCUST), "--locustfile", str(LOCUSTFILE), "--headless", "--host", one.url]
        command += ["--users", "4", "--spawn-rate", "4", "--run-time", "4s", "--stop-timeout", "5"]
        command += ["--equal-weights", "--only-summary", "--json-file", str(stats)]
        result = subprocess.run(
            command,
            cwd=tmp_path,
            env={**locust_env(tmp_path), "LOADGEN_HOSTS": f"{one.url},{two.url}"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        counted = [requests_by_route(app.scrape()) for app in (one, two)]
    sent = {
        entry["name"]: entry["num_requests"] for entry in json.loads((tmp_path / "stats.json").read_text())
    }
    for name, (route, status) in MIX.items():
        each = [routes.get(route, {}).get(("GET", status), 0) for routes in counted]
        assert sum(each) == sent.get(name, 0), name  # Locust lists the routes it sent to
    assert sum(sent.values()) > 0
    # two users on each, each user's first request at once: both instances served some
    # (not necessarily every route: four seconds of two users is about eight requests)
    assert all(sum(sum(statuses.values()) for statuses in routes.values()) > 0 for routes in counted)
