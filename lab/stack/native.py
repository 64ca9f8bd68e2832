"""Run the whole stack without Docker: `make native` / `python -m lab native`.

Debian's prometheus, prometheus-alertmanager, graphite-carbon and graphite-web,
npm's statsd, Debian's VictoriaMetrics as the OTLP receiver (Prometheus 3's, in
compose: Debian's Prometheus has none), the lab's webhook sink for the alerts,
and the app under gunicorn plus the worker, on 127.0.0.1 and the ports of `.env`.
Configuration comes from the files the containers mount (written by prepare.py from
native_config.py), the services are services.py's; this module is the runner: it checks the ports,
starts each service, and supervises them. Data stays in one directory across restarts. Every
process is stopped on Ctrl-C, on SIGTERM, or as soon as one of them dies (the HA topology restarts it).
"""

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from ..settings import ROOT, Ports
from . import ha, ha_push
from . import native_config as cfg
from .deps import VICTORIA_METRICS
from .prepare import prepare, system_env
from .processes import Process, die_with_parent, stop_all
from .services import Service, ha_services, services

READY_LINE = "native stack ready"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0  # carbon writes its cache out before it exits


class Stopped(Exception):
    """SIGINT or SIGTERM arrived."""


def check_ports_free(ports: Ports, loadgen: bool, ha_ports: ha.HaPorts | None = None) -> None:
    """Stop early, naming the variable, when a port is already taken (in the HA topology also the carbon
    ports on each graphite node's loopback address)."""
    every = {**ports.as_env(), **(ha_ports.as_env() if ha_ports is not None else {})}
    addresses = {(cfg.LOOPBACK, name, port) for name, port in every.items()}
    if ha_ports is not None:
        carbon = {name: port for name, port in every.items() if name.startswith("CARBON_")}
        addresses |= {(host, name, port) for host in ha_push.GRAPHITE_HOSTS for name, port in carbon.items()}
    for host, name, port in sorted(addresses):
        if name == "GRAFANA_PORT" or (name == "LOADGEN_PORT" and not loadgen):
            continue
        udp = name == "STATSD_PORT" or (name.startswith("STATSD_NODE_") and not name.endswith("_ADMIN_PORT"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as sock:
            # As the servers bind: a port with connections in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, int(port)))
            except OSError:
                sys.exit(
                    f"port {port} ({name}) is in use on {host}: stop what holds it or set {name} in .env"
                )


def _without_locust_options(environ) -> dict[str, str]:
    # Locust reads LOCUST_* options from its environment: only the compose file's count.
    return {name: value for name, value in environ.items() if not name.startswith("LOCUST_")}


def start(service: Service, logs: Path) -> None:
    if service.pid_file is not None:
        service.pid_file.unlink(missing_ok=True)
    service.process = Process(
        service.argv,
        name=service.name,
        log=logs / f"{service.name}.log",
        cwd=ROOT,
        env=system_env(service.env)
        if service.debian_python
        else {**_without_locust_options(os.environ), **service.env},
        start_new_session=True,  # Ctrl-C reaches the runner, which stops them in order
        preexec_fn=die_with_parent,
    )
    service.process.wait_ready(service.ready, START_TIMEOUT)
    # statsd says it is up before it binds: a second look catches a bind error.
    time.sleep(0.1)
    if service.process.poll() is not None:
        raise RuntimeError(f"{service.name} exited right after start:\n{service.process.tail()}")


# The HA topology's services as they run now, for `lab experiment --node-failures` (which kills one
# of each tier): the runner's pid, and each service's, rewritten at every restart, removed at the stop.
PIDS_FILE = "pids.json"


def write_pids(data_dir: Path, started: list[Service]) -> None:
    services = {s.name: s.process.pid for s in started if s.process is not None}
    temporary = data_dir / f"{PIDS_FILE}.new"
    temporary.write_text(json.dumps({"runner": os.getpid(), "services": services}, indent=2))
    temporary.replace(data_dir / PIDS_FILE)  # whole or not at all, for a reader


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
        if topology is not None:
            write_pids(data_dir, started)
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
                write_pids(data_dir, started)
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
        (data_dir / PIDS_FILE).unlink(missing_ok=True)
        print("native stack stopped", flush=True)
