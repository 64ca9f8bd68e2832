"""Run the whole stack without Docker: `make native` / `python -m lab native`.

Debian's prometheus, prometheus-alertmanager, graphite-carbon and graphite-web,
npm's statsd, Debian's VictoriaMetrics as the OTLP receiver (Prometheus 3's, in
compose: Debian's Prometheus has none), the lab's webhook sink for the alerts,
and the app under gunicorn plus the worker, on 127.0.0.1 and the ports of `.env`.
Configuration comes from the files the containers mount (lab/stack/native_config.py);
data stays in one directory across restarts. Every process is stopped on
Ctrl-C, on SIGTERM, or as soon as one of them dies.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import yaml

from app import config

from ..queries import OtelQueries, PushQueries, is_
from ..settings import (
    ROOT,
    Ports,
    app_environment,
    duration_seconds,
    lab_environment,
    prometheus_scrape_seconds,
)
from . import ha
from . import native_config as cfg
from .deps import STATSD_DAEMON_JS, SYSTEM_PYTHON, VICTORIA_METRICS
from .processes import Check, Process, die_with_parent, http_ok, statsd_healthy, stop_all, tcp_open

READY_LINE = "native stack ready"
ALERT_SINK = ROOT / "lab" / "stack" / "alert_sink.py"  # run as a script, as the compose service runs it
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0  # carbon writes its cache out before it exits


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Check
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    process: Process | None = None


class Stopped(Exception):
    """SIGINT or SIGTERM arrived."""


def check_ports_free(ports: Ports, loadgen: bool, ha_ports: ha.HaPorts | None = None) -> None:
    """Stop early, naming the variable, when a port is already taken."""
    every = {**ports.as_env(), **(ha_ports.as_env() if ha_ports is not None else {})}
    for name, port in every.items():
        if name == "GRAFANA_PORT" or (name == "LOADGEN_PORT" and not loadgen):
            continue
        kind = socket.SOCK_DGRAM if name == "STATSD_PORT" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            # As the servers bind: a port with connections in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((cfg.LOOPBACK, int(port)))
            except OSError:
                sys.exit(
                    f"port {port} ({name}) is in use on 127.0.0.1: stop what holds it or set {name} in .env"
                )


def prepare(
    ports: Ports,
    data_dir: Path,
    flush_seconds: int,
    scrape_interval: str | None,
    topology: ha.Topology | None = None,
) -> dict[str, str]:
    """Write every derived config under data_dir, the HA topology's too; return graphite-web's env."""
    for sub in ("carbon", "graphite", "logs", "run", "prometheus", "statsd", "otlp-receiver", "alertmanager"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    # A shortened scrape interval shortens the rule groups' own intervals too: copies of the rules.
    rules = (
        cfg.scaled_rule_files(data_dir / "prometheus" / "rules", scrape_interval) if scrape_interval else None
    )
    if topology is not None:
        for replica in ha.REPLICAS:
            (data_dir / f"prometheus-{replica}").mkdir(exist_ok=True)
            config = ha.prometheus_config(topology, replica, scrape_interval)
            config["rule_files"] = rules or config["rule_files"]
            (data_dir / f"prometheus-{replica}" / "prometheus.yml").write_text(
                yaml.safe_dump(config, sort_keys=False)
            )
        (data_dir / "long-term-store").mkdir(exist_ok=True)
        (data_dir / "otlp-receiver-2").mkdir(exist_ok=True)
    cfg.whisper_dir(data_dir).mkdir(parents=True, exist_ok=True)
    (data_dir / "carbon" / "carbon.conf").write_text(cfg.carbon_config(ports, data_dir))
    (data_dir / "carbon" / "storage-schemas.conf").write_text(cfg.storage_schemas(flush_seconds))
    (data_dir / "carbon" / "storage-aggregation.conf").write_text(cfg.STORAGE_AGGREGATION.read_text())
    (data_dir / "statsd" / "config.js").write_text(
        json.dumps(cfg.statsd_config(ports, flush_seconds), indent=2)
    )
    prometheus = cfg.prometheus_config(ports, scrape_interval)
    prometheus["rule_files"] = rules or prometheus["rule_files"]
    (data_dir / "prometheus" / "prometheus.yml").write_text(yaml.safe_dump(prometheus, sort_keys=False))
    alertmanager = cfg.alertmanager_config(ports, scrape_interval)
    cfg.alertmanager_config_file(data_dir).write_text(yaml.safe_dump(alertmanager, sort_keys=False))
    relabel = cfg.otlp_relabel_config(app_environment().get("OTEL_RESOURCE_ATTRIBUTES", ""))
    cfg.otlp_relabel_file(data_dir).write_text(yaml.safe_dump(relabel, sort_keys=False))
    secret_file = data_dir / "graphite" / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(lab_environment().get("GRAPHITE_SECRET_KEY") or secrets.token_urlsafe(48))
    (data_dir / "graphite" / "lab_graphite_settings.py").write_text(
        cfg.graphite_web_settings(ports, data_dir, secret_file.read_text().strip())
    )
    graphite_env = {
        "PYTHONPATH": str(data_dir / "graphite"),
        "GRAPHITE_SETTINGS_MODULE": "lab_graphite_settings",
        "DJANGO_SETTINGS_MODULE": "graphite.settings",
    }
    subprocess.run(
        [SYSTEM_PYTHON, "-m", "django", "migrate", "--noinput"],
        env=_system_env(graphite_env),
        check=True,
        capture_output=True,
    )
    # A carbon killed hard leaves its pid file, and refuses to start over it.
    (data_dir / "run" / "carbon-cache-a.pid").unlink(missing_ok=True)
    return graphite_env


def services(ports: Ports, data_dir: Path, graphite_env: dict[str, str], loadgen: bool) -> list[Service]:
    otlp_receiver = f"http://{cfg.LOOPBACK}:{ports.otlp_receiver}"
    app_env = {
        **app_environment(),  # what .env says of the app, as compose would pass it
        "APP_HOST": cfg.LOOPBACK,
        "APP_PORT": str(ports.app),
        "WORKER_HOST": cfg.LOOPBACK,
        "WORKER_PORT": str(ports.worker),
        "STATSD_HOST": cfg.LOOPBACK,
        "STATSD_PORT": str(ports.statsd),
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": otlp_receiver + cfg.OTLP_RECEIVER_PATH,
        "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "run" / "prometheus-multiproc"),
    }
    loop = cfg.LOOPBACK
    # The app's request counters under the STATSD_PREFIX it runs with: where to look first in Graphite.
    settings = config.from_env(app_env)
    requests_per_flush = PushQueries(prefix=settings["STATSD_PREFIX"]).requests(per_second=False)
    # And the requests its workers pushed over OTLP, under the job its OTEL_SERVICE_NAME makes.
    requests_pushed = OtelQueries(scope=(is_("job", settings["OTEL_SERVICE_NAME"]),)).total()
    stack = [
        Service(
            "carbon",
            [
                "/usr/bin/carbon-cache",
                f"--config={data_dir / 'carbon' / 'carbon.conf'}",
                "--nodaemon",
                "start",
            ],
            tcp_open(ports.carbon_pickle),  # bound last
            f"{loop}:{ports.carbon} (plaintext)",
        ),
        Service(
            "statsd",
            ["node", str(STATSD_DAEMON_JS), str(data_dir / "statsd" / "config.js")],
            statsd_healthy(ports.statsd_admin),
            f"{loop}:{ports.statsd}/udp",
        ),
        Service(
            "graphite-web",
            [
                "/usr/bin/twistd3",
                "--nodaemon",
                "--pidfile=",
                "--logfile=-",
                "web",
                "--listen",
                f"tcp:{ports.graphite}:interface={loop}",
                "--wsgi",
                "graphite.wsgi.application",
            ],
            http_ok(f"http://{loop}:{ports.graphite}/version/"),
            f"http://{loop}:{ports.graphite}/render?target={requests_per_flush}&from=-15min",
            env=graphite_env,
        ),
        # Debian's build has no web UI (vmui): a query of the Prometheus API instead.
        otlp_receiver_service("otlp-receiver", ports.otlp_receiver, data_dir, {"query": requests_pushed}),
        Service(
            "alert-sink",
            [sys.executable, str(ALERT_SINK), "--host", loop, "--port", str(ports.alert_sink)],
            http_ok(f"http://{loop}:{ports.alert_sink}/healthz"),
            f"http://{loop}:{ports.alert_sink}/notifications (`lab alerts` prints them)",
        ),
        Service(
            "alertmanager",
            ["prometheus-alertmanager", *cfg.alertmanager_argv(ports, data_dir)],
            http_ok(f"http://{loop}:{ports.alertmanager}/-/ready"),
            # Debian's build has no web UI: its API, and amtool, instead.
            f"http://{loop}:{ports.alertmanager}/api/v2/alerts "
            f"(amtool --alertmanager.url=http://{loop}:{ports.alertmanager} alert query)",
        ),
        Service(
            "app",
            [sys.executable, "-m", "gunicorn", "--config", "app/gunicorn.conf.py"],
            http_ok(f"http://{loop}:{ports.app}/healthz"),
            f"http://{loop}:{ports.app}/",
            env=app_env,
        ),
        Service(
            "worker",
            [sys.executable, "-m", "app.blog_worker"],
            http_ok(f"http://{loop}:{ports.worker}/metrics"),
            f"http://{loop}:{ports.worker}/metrics",
            env=app_env,
        ),
        prometheus_service("prometheus", data_dir / "prometheus", ports.prometheus),
    ]
    if loadgen:
        stack.append(
            Service(
                "loadgen",
                [sys.executable, "-m", "locust", *cfg.loadgen_argv(ports)],
                http_ok(f"http://{loop}:{ports.loadgen}/"),
                f"http://{loop}:{ports.loadgen}/ (Locust: users = requests per second)",
            )
        )
    return stack


def prometheus_service(name: str, directory: Path, port: int) -> Service:
    """Debian's Prometheus with its prometheus.yml and TSDB in `directory`, on the loopback."""
    url = f"http://{cfg.LOOPBACK}:{port}"
    argv = [
        "prometheus",
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        "--storage.tsdb.retention.time=30d",  # the SLOs' window, as in compose
        f"--web.listen-address={cfg.LOOPBACK}:{port}",
    ]
    return Service(name, argv, http_ok(f"{url}/-/ready"), f"{url}/targets")


def otlp_receiver_service(name: str, port: int, data_dir: Path, query: dict[str, str]) -> Service:
    """Debian's VictoriaMetrics as an OTLP receiver on `port`, its storage under data_dir/`name`;
    the URL it is shown by asks it `query`."""
    url = f"http://{cfg.LOOPBACK}:{port}"
    argv = [str(VICTORIA_METRICS), *cfg.otlp_receiver_argv(port, data_dir, name)]
    return Service(name, argv, http_ok(f"{url}/health"), f"{url}/api/v1/query?{urlencode(query)}")


def ha_services(
    single: list[Service], topology: ha.Topology, data_dir: Path, scrape_interval: str | None
) -> list[Service]:
    """The single-node services with the pull side doubled: a second app instance, two Prometheus
    replicas, three Alertmanagers in a cluster, and the long-term store the replicas write to."""
    loop = cfg.LOOPBACK
    scrape = duration_seconds(scrape_interval) if scrape_interval else prometheus_scrape_seconds()
    peer_timeout = ha.peer_timeout_seconds(scrape)
    second_otlp_receiver = f"http://{loop}:{topology.ha.otlp_receiver_2}{cfg.OTLP_RECEIVER_PATH}"
    result: list[Service] = []
    for service in single:
        if service.name == "alertmanager":
            result.append(
                Service(
                    "long-term-store",
                    [str(VICTORIA_METRICS), *ha.long_term_store_argv(topology, data_dir, scrape)],
                    http_ok(f"{topology.long_term_store}/health"),
                    f"{topology.long_term_store}/api/v1/query?query=up (the replicas' remote write)",
                )
            )
            for index, (web, _) in enumerate(topology.alertmanagers):
                result.append(
                    Service(
                        f"alertmanager-{index + 1}",
                        [
                            "prometheus-alertmanager",
                            *ha.alertmanager_argv(topology, data_dir, index, peer_timeout),
                        ],
                        http_ok(f"http://{loop}:{web}/-/ready"),
                        f"http://{loop}:{web}/api/v2/status (cluster peers)",
                    )
                )
        elif service.name == "otlp-receiver":
            # replica b's OTLP receiver, beside replica a's
            second = otlp_receiver_service(
                "otlp-receiver-2", topology.ha.otlp_receiver_2, data_dir, {"query": "up"}
            )
            result += [service, second]
        elif service.name == "app":
            for index, port in enumerate(topology.apps):
                env = {
                    **service.env,
                    "OTLP_EXTRA_METRICS_ENDPOINTS": second_otlp_receiver,
                    "APP_PORT": str(port),
                    "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "run" / f"prometheus-multiproc-{index + 1}"),
                }
                result.append(
                    Service(
                        f"app-{index + 1}",
                        service.argv,
                        http_ok(f"http://{loop}:{port}/healthz"),
                        f"http://{loop}:{port}/",
                        env=env,
                    )
                )
        elif service.name == "prometheus":
            for replica, port in topology.prometheis.items():
                result.append(
                    prometheus_service(f"prometheus-{replica}", data_dir / f"prometheus-{replica}", port)
                )
        else:
            result.append(service)
    return result


def _system_env(extra: dict[str, str]) -> dict[str, str]:
    # Debian's Python runs graphite: keep the venv's interpreter settings out.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    return {**env, **extra}


def _without_locust_options(environ) -> dict[str, str]:
    # Locust reads LOCUST_* options from its environment: only the compose file's count.
    return {name: value for name, value in environ.items() if not name.startswith("LOCUST_")}


def start(service: Service, logs: Path) -> None:
    service.process = Process(
        service.argv,
        name=service.name,
        log=logs / f"{service.name}.log",
        cwd=ROOT,
        env=_system_env(service.env)
        if service.name in ("carbon", "graphite-web")
        else {**_without_locust_options(os.environ), **service.env},
        start_new_session=True,  # Ctrl-C reaches the runner, which stops them in order
        preexec_fn=die_with_parent,
    )
    service.process.wait_ready(service.ready, START_TIMEOUT)
    # statsd says it is up before it binds: a second look catches a bind error.
    time.sleep(0.1)
    if service.process.poll() is not None:
        raise RuntimeError(f"{service.name} exited right after start:\n{service.process.tail()}")


def _raise_stopped(signum, frame):
    raise Stopped


def run(
    ports: Ports,
    data_dir: Path,
    flush_seconds: int,
    scrape_interval: str | None,
    loadgen: bool = True,
    ha_ports: ha.HaPorts | None = None,
) -> int:
    """Start the stack (the HA topology with `ha_ports`), report its URLs, and supervise it until told
    to stop: the single-node stack stops as a whole when a service dies; the HA topology restarts it."""
    check_ports_free(ports, loadgen, ha_ports)
    if not VICTORIA_METRICS.exists():
        sys.exit(f"{VICTORIA_METRICS} is missing: `make deps` (python -m lab deps) fetches it")
    data_dir = data_dir.resolve()
    topology = ha.Topology(ports, ha_ports) if ha_ports is not None else None
    graphite_env = prepare(ports, data_dir, flush_seconds, scrape_interval, topology)
    logs = data_dir / "logs"
    started: list[Service] = []
    signal.signal(signal.SIGINT, _raise_stopped)
    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        stack = services(ports, data_dir, graphite_env, loadgen)
        if topology is not None:
            stack = ha_services(stack, topology, data_dir, scrape_interval)
        for service in stack:
            started.append(service)
            start(service, logs)
            pid = f"pid {service.process.pid:<8}" if topology is not None else ""
            print(f"  {service.name:<17}{pid}{service.url}", flush=True)
        print(f"{READY_LINE}: data in {data_dir}, logs in {logs}", flush=True)
        print(
            "Grafana does not run natively (no package for this machine): use `docker compose up` "
            "for the dashboards; here, query Prometheus, Graphite and the OTLP receiver directly.",
            flush=True,
        )
        while True:
            for service in started:
                if service.process.poll() is None:
                    continue
                if topology is None:
                    print(
                        f"{service.name} exited with {service.process.returncode}; stopping the stack\n"
                        f"{service.process.tail()}",
                        file=sys.stderr,
                    )
                    return 1
                print(
                    f"{service.name} (pid {service.process.pid}) exited with {service.process.returncode}; "
                    f"restarting it in {ha.RESTART_SECONDS:g} s",
                    flush=True,
                )
                time.sleep(ha.RESTART_SECONDS)
                start(service, logs)
                print(f"{service.name} restarted: pid {service.process.pid}", flush=True)
            time.sleep(0.5)
    except Stopped:
        return 0
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # The last started first: a service stops before those it sends to. The Prometheus replicas
        # flush their remote write on the way out: they stop, and are waited for, while the
        # long-term store still takes it.
        replicas = [s for s in started if topology is not None and s.name.startswith("prometheus-")]
        stop_all([service.process for service in reversed(replicas) if service.process], STOP_TIMEOUT)
        rest = [s for s in reversed(started) if s not in replicas and s.process]
        stop_all([service.process for service in rest], STOP_TIMEOUT)
        print("native stack stopped", flush=True)
