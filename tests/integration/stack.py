"""A running stack, reached through URLs only: native (default) or compose.

The tests below do not know which one they talk to.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from app import config
from lab import polling
from lab.backends import Alertmanager, Graphite, Prometheus
from lab.queries import OtelQueries, Pipelines, PullQueries, PushQueries
from lab.rules import RECORDED, recording_lag, rule
from lab.settings import (
    STACK_DEFAULTS,
    app_environment,
    duration_seconds,
    lab_environment,
    statsd_flush_seconds,
)
from lab.stack.ha import HA_DEFAULTS
from lab.stack.native import READY_LINE
from lab.stack.processes import NotReady, Process
from lab.stack.services import app_run_dir

from ..helpers import ROOT, OtlpReceiver, free_port

# What `lab faults --error-rate 1 --route /` pages with (prometheus/rules/alerts.yml).
PAGE = "AvailabilitySLOFastBurn"
# What the test stack shortens (whisper's finest archive follows the flush), the OTLP export too.
FLUSH_SECONDS = 1
SCRAPE_INTERVAL = "1s"
APP_TEST_ENV = {
    # Not the default: every push query must follow STATSD_PREFIX (the dashboards' `prefix`
    # variable); three nodes, where the default has two, so node numbers cannot be hard-coded.
    "STATSD_PREFIX": "labtest.push.app",
    "DB_DELAY_MIN_SECONDS": "0.2",
    "DB_DELAY_MAX_SECONDS": "0.4",
    "STATSD_GAUGE_INTERVAL": "0.1",
    "GUNICORN_WORKERS": "3",
    "LAB_ADMIN_TOKEN": "integration-test-token",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",  # ms: each worker pushes every second, as the flush and scrape
}


@dataclass
class Stack:
    app: str
    prometheus: str
    graphite: str
    worker: str
    otel: str  # the OTLP receiver, which answers PromQL: Prometheus 3 itself, or the native twin
    alertmanager: str
    alert_sink: str  # the lab's webhook receiver (lab/stack/alert_sink.py), which Alertmanager notifies
    flush_seconds: float
    started_at: float
    admin_token: str
    app_settings: dict  # the app's settings (app/config.py) as this stack runs it
    # The native twin (VictoriaMetrics) shows samples some seconds after they arrive, and is
    # flushed before an exact count; Prometheus shows each one as soon as it stores it.
    otel_is_twin: bool = False
    # Natively, the runner's data directory: the app's processes can be read from /proc beside it.
    data_dir: Path | None = None

    @property
    def app_processes_dir(self) -> Path | None:
        """Where the app's workers name their pids by slot (app/processes.py), natively."""
        return None if self.data_dir is None else app_run_dir(self.data_dir)

    @cached_property
    def scrape_seconds(self) -> float:
        """The app's scrape interval, as this stack's Prometheus has it."""
        return Prometheus(self.prometheus).scrape_interval("app")

    @cached_property
    def evaluation_seconds(self) -> float:
        """How often this stack's Prometheus evaluates its rules."""
        return Prometheus(self.prometheus).evaluation_interval()

    def firing_seconds(self, alert: str) -> float:
        """The longest `alert` takes to fire once the requests it counts fail, where they are most of
        the traffic: two scrapes for rate() to see the errors, the recorded series it reads catching up
        (one evaluation for the page's, computed from the counters; a minute more for the windows past
        6 h, summed from the 5-minute rates once a minute), one evaluation of the alert, then its `for:`."""
        found = rule("alert", alert)
        recorded = set(re.findall(RECORDED, found["expr"]))
        running = Prometheus(self.prometheus).rule_group_intervals()  # natively, scaled to its scrapes
        lag = max(recording_lag(name, self.evaluation_seconds, running) for name in recorded)
        wait = duration_seconds(found.get("for", "0s"))
        return 2 * self.scrape_seconds + lag + self.evaluation_seconds + wait

    def route_timings(self, receiver: str) -> tuple[float, float]:
        """group_wait and group_interval of the route to `receiver`, as this stack's Alertmanager has them."""
        route = Alertmanager(self.alertmanager).config()["route"]
        (child,) = [child for child in route["routes"] if child["receiver"] == receiver]
        return tuple(
            duration_seconds(child.get(name, route[name])) for name in ("group_wait", "group_interval")
        )

    @property
    def prefix(self) -> str:
        return self.app_settings["STATSD_PREFIX"]

    @property
    def capacity(self) -> int:
        """Requests the app answers at once: gunicorn workers x threads."""
        return self.app_settings["GUNICORN_WORKERS"] * self.app_settings["GUNICORN_THREADS"]

    @property
    def export_seconds(self) -> float:
        """How often each app worker pushes over OTLP."""
        return self.app_settings["OTEL_METRIC_EXPORT_INTERVAL"] / 1000

    @cached_property
    def pipelines(self) -> Pipelines:
        """The contract's queries over this stack: its jobs, its STATSD_PREFIX, rates over a few scrapes
        and exports (15 s at least, as Grafana's $__rate_interval)."""
        return Pipelines.of_stack(
            prefix=self.prefix,
            scrape_seconds=self.scrape_seconds,
            export_seconds=self.export_seconds,
            service=self.app_settings["OTEL_SERVICE_NAME"],
            least_seconds=15,
        )

    @property
    def pull(self) -> PullQueries:
        return self.pipelines.pull

    @property
    def otel_queries(self) -> OtelQueries:
        return self.pipelines.otel

    @property
    def push(self) -> PushQueries:
        return self.pipelines.push

    def promql(self, query: str) -> float:
        """The value of a PromQL expression that sums to one number (0 when empty)."""
        return Prometheus(self.prometheus).value(query)

    def otel_promql(self, query: str) -> float:
        """The value of a PromQL expression over everything the OTLP receiver got (0 when empty)."""
        if self.otel_is_twin:
            return OtlpReceiver(self.otel).value(query)
        return Prometheus(self.otel).value(query)

    def graphite_sum(self, target: str) -> float:
        """The sum of every point of `target` since the stack started."""
        return Graphite(self.graphite).total(target, self.started_at - 60)

    def graphite_last(self, target: str) -> float | None:
        """The latest non-empty point of `target`, or None when it has none."""
        points = Graphite(self.graphite).points(target, time.time() - 120)
        return points[-1][1] if points else None

    def settle_seconds(self) -> float:
        """How long until what was sent is visible in every backend."""
        return max(self.flush_seconds, self.scrape_seconds, self.export_seconds) + 1.5


def settled(read, stack: Stack, timeout: float = 60):
    """Read totals once they have stopped moving (earlier traffic fully flushed)."""
    try:
        return polling.settled(read, stack.settle_seconds(), timeout=timeout)
    except polling.Unsettled as error:
        raise AssertionError(f"{error}: is something else sending traffic?") from None


def distinct_free_ports(names) -> dict[str, str]:
    """A free port for each name, no two the same (the kernel may offer a port it just offered)."""
    ports: dict[str, str] = {}
    for name in names:
        port = str(free_port())
        while port in ports.values():
            port = str(free_port())
        ports[name] = port
    return ports


class NativeRunner:
    """`python -m lab native` on free ports in a temporary data dir, as a process."""

    def __init__(
        self,
        ports: dict[str, str] | None = None,
        data_dir: str | None = None,
        loadgen: bool = False,
        ha: bool = False,
    ):
        self.ha = ha  # the HA topology (lab/stack/ha.py): its extra ports too
        self.ports = ports or distinct_free_ports({**STACK_DEFAULTS, **(HA_DEFAULTS if ha else {})})
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="lab-native-")
        self.loadgen = loadgen  # off by default: the tests count exact traffic
        # One log per runner: a second runner may share the data dir (and the services' logs in it).
        handle, log = tempfile.mkstemp(prefix="runner-", suffix=".log", dir=self.data_dir)
        os.close(handle)
        self.log = Path(log)

    def start(self) -> None:
        env = {**os.environ, **self.ports, **APP_TEST_ENV}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        argv = [sys.executable, "-m", "lab", "native", "--data-dir", self.data_dir]
        argv += ["--flush-interval", str(FLUSH_SECONDS), "--scrape-interval", SCRAPE_INTERVAL]
        if not self.loadgen:
            argv.append("--no-loadgen")
        if self.ha:
            argv.append("--ha")
        self.process = Process(argv, name="the native stack", log=self.log, cwd=ROOT, env=env)
        try:
            self.process.wait_ready(self._ready, timeout=120)
        except NotReady:
            self.stop()  # first: what it says as it stops is part of the story
            raise RuntimeError("the native stack did not become ready:\n" + "".join(self.output)) from None

    @property
    def output(self) -> list[str]:
        """What the runner printed so far, line by line."""
        return self.log.read_text(errors="replace").splitlines(keepends=True)

    def _ready(self) -> bool:
        return any(line.startswith(READY_LINE) for line in self.output)

    def children(self) -> list[int]:
        """The pids of the services the runner started."""
        return self.process.children()

    def pid(self, service: str) -> int:
        """The pid of a service of the HA topology, as the runner last printed it (started or restarted)."""
        found = None
        for line in self.output:
            if match := re.match(rf"\s*{re.escape(service)}\s+pid (\d+)", line) or re.match(
                rf"{re.escape(service)} restarted: pid (\d+)", line
            ):
                found = int(match[1])
        assert found is not None, f"the runner never printed a pid for {service}"
        return found

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int:
        return self.process.stop(timeout=60)

    def cleanup(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def stack(self) -> Stack:
        loop = "http://127.0.0.1"
        otel = f"{loop}:{self.ports['OTLP_RECEIVER_PORT']}"
        return Stack(
            app=f"{loop}:{self.ports['APP_PORT']}",
            prometheus=f"{loop}:{self.ports['PROMETHEUS_PORT']}",
            graphite=f"{loop}:{self.ports['GRAPHITE_PORT']}",
            worker=f"{loop}:{self.ports['WORKER_PORT']}",
            otel=otel,
            alertmanager=f"{loop}:{self.ports['ALERTMANAGER_PORT']}",
            alert_sink=f"{loop}:{self.ports['ALERT_SINK_PORT']}",
            flush_seconds=FLUSH_SECONDS,
            started_at=time.time(),
            admin_token=APP_TEST_ENV["LAB_ADMIN_TOKEN"],
            # What the runner gives the app: .env, then the environment, then the test's settings.
            app_settings=config.from_env(app_environment({**os.environ, **APP_TEST_ENV})),
            otel_is_twin=True,
            data_dir=Path(self.data_dir),
        )


def native_stack():
    """Yield a native stack for the session; stop it and remove its data after."""
    runner = NativeRunner()
    try:
        runner.start()
        yield runner.stack()
        runner.stop()
    finally:
        if runner.process.poll() is None:
            runner.stop()
        runner.cleanup()


def compose_stack():
    """Start the compose stack (no loadgen: tests count exact traffic) with testcontainers."""
    from testcontainers.compose import DockerCompose

    compose = DockerCompose(
        ROOT,
        compose_file_name="docker-compose.yml",
        build=True,
        wait=True,
        env_file=str(ROOT / ".env") if (ROOT / ".env").exists() else None,
        services=["app", "worker", "prometheus", "alertmanager", "alert-sink", "graphite"],
    )
    started_at = time.time()
    with compose:

        def url(service, port):
            host, published = compose.get_service_host_and_port(service, port)
            return f"http://{host}:{published}"

        # The app's environment as compose resolved it ("" where the app's default applies).
        environment = compose.get_config()["services"]["app"]["environment"]
        yield Stack(
            app=url("app", 5000),
            prometheus=url("prometheus", 9090),
            graphite=url("graphite", 8080),
            worker=url("worker", 8000),
            otel=url("prometheus", 9090),  # Prometheus 3 receives OTLP itself
            alertmanager=url("alertmanager", 9093),
            alert_sink=url("alert-sink", 9095),
            flush_seconds=statsd_flush_seconds(),  # graphite/statsd/udp.js, which the container mounts
            started_at=started_at,
            admin_token=lab_environment()["LAB_ADMIN_TOKEN"],
            app_settings=config.from_env({name: value or "" for name, value in environment.items()}),
        )


def docker_engine_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def compose_secrets_missing() -> list[str]:
    """What the compose stack and these tests need from .env (`make up` writes it all)."""
    from lab.stack.dotenv import GENERATED

    values = lab_environment()
    return [name for name in GENERATED if not values.get(name)]
