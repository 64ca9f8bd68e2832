"""What the native stack runs, and how each is started and seen ready: the single node's services
(`services`) and the HA topology's (`ha_services`, from ha.py and ha_push.py), each a command line, a
readiness check and the URL the runner shows. The runner (native.py) starts and supervises them."""

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlencode

from app import config

from ..backends import OTLP_RECEIVER_PATH
from ..queries import OtelQueries, PushQueries, is_
from ..settings import ROOT, Ports, app_environment, duration_seconds, prometheus_scrape_seconds
from . import ha, ha_push
from . import native_config as cfg
from .deps import STATSD_DAEMON_JS, STATSD_PROXY_JS, VICTORIA_METRICS
from .prepare import graphite_web_env
from .processes import Check, Process, http_ok, log_says, statsd_healthy, tcp_open

ALERT_SINK = ROOT / "lab" / "stack" / "alert_sink.py"  # run as a script, as the compose service runs it


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Check
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    process: Process | None = None
    debian_python: bool = False  # carbon and graphite-web: Debian's Python, not the venv's
    # carbon's: one killed hard leaves it behind, and refuses to start over it (also when restarted)
    pid_file: Path | None = None


def app_run_dir(data_dir: Path, instance: int | None = None) -> Path:
    """An app instance's multiprocess directory: its workers' metric files and, by slot, their pids
    (app/processes.py). The HA topology's instances are numbered from 1."""
    return data_dir / "run" / ("prometheus-multiproc" + (f"-{instance}" if instance else ""))


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
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": otlp_receiver + OTLP_RECEIVER_PATH,
        "PROMETHEUS_MULTIPROC_DIR": str(app_run_dir(data_dir)),
    }
    loop = cfg.LOOPBACK
    # The app's request counters under the STATSD_PREFIX it runs with: where to look first in Graphite.
    settings = config.from_env(app_env)
    requests_per_flush = PushQueries(prefix=settings["STATSD_PREFIX"]).requests(per_second=False)
    # And the requests its workers pushed over OTLP, under the job its OTEL_SERVICE_NAME makes.
    requests_pushed = OtelQueries(scope=(is_("job", settings["OTEL_SERVICE_NAME"]),)).total()
    stack = [
        # ready once its pickle receiver, which it binds last, takes connections
        carbon_service(
            "carbon", data_dir, tcp_open(ports.carbon_pickle), f"{loop}:{ports.carbon} (plaintext)"
        ),
        statsd_service("statsd", data_dir / "statsd" / "config.js", ports.statsd, ports.statsd_admin),
        graphite_web_service(
            "graphite-web", ports.graphite, graphite_env, f"render?target={requests_per_flush}&from=-15min"
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
        Service(
            "node-exporter",
            ["prometheus-node-exporter", *cfg.node_exporter_argv(ports)],
            http_ok(f"http://{loop}:{ports.node_exporter}/metrics"),
            f"http://{loop}:{ports.node_exporter}/metrics (the host, scraped as job node)",
        ),
        Service(
            "collectd",
            ["collectd", "-f", "-C", str(cfg.collectd_config_file(data_dir))],
            # no port of its own: ready once it says so (its log plugin loads first, at each start)
            log_says(data_dir / "logs" / "collectd.log", "Initialization complete", 'plugin "logfile"'),
            f"{loop}:{ports.carbon} (the host, pushed to Graphite as collectd.lab-host.*)",
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


def carbon_service(name: str, node: Path, ready: Check, url: str, program: str = "carbon-cache") -> Service:
    """Debian's carbon-cache (or carbon-relay) with the carbon.conf prepare wrote under `node`."""
    argv = [f"/usr/bin/{program}", f"--config={node / 'carbon' / 'carbon.conf'}", "--nodaemon", "start"]
    pid_file = node / "run" / f"{program}-a.pid"
    return Service(name, argv, ready, url, debian_python=True, pid_file=pid_file)


def statsd_service(
    name: str, config: Path, port: int, admin: int, program: Path = STATSD_DAEMON_JS
) -> Service:
    """npm statsd's daemon (or its cluster proxy) with `config`; ready when its admin port says up."""
    return Service(
        name, ["node", str(program), str(config)], statsd_healthy(admin), f"{cfg.LOOPBACK}:{port}/udp"
    )


def graphite_web_service(name: str, port: int, env: dict[str, str], path: str) -> Service:
    """Debian's graphite-web under twistd on `port`; the URL it is shown by asks it `path`."""
    loop = cfg.LOOPBACK
    argv = [
        "/usr/bin/twistd3",
        "--nodaemon",
        "--pidfile=",
        "--logfile=-",
        "web",
        "--listen",
        f"tcp:{port}:interface={loop}",
        "--wsgi",
        "graphite.wsgi.application",
    ]
    ready = http_ok(f"http://{loop}:{port}/version/")
    return Service(name, argv, ready, f"http://{loop}:{port}/{path}", env=env, debian_python=True)


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
    replicas, three Alertmanagers in a cluster, and the long-term store the replicas write to; and the
    push side's cluster (ha_push.py): three carbon caches behind a relay, two StatsD nodes behind a
    proxy, three graphite-web nodes."""
    loop = cfg.LOOPBACK
    ports = topology.ports
    scrape = duration_seconds(scrape_interval) if scrape_interval else prometheus_scrape_seconds()
    peer_timeout = ha.peer_timeout_seconds(scrape)
    second_otlp_receiver = f"http://{loop}:{topology.ha.otlp_receiver_2}{OTLP_RECEIVER_PATH}"
    result: list[Service] = []
    for service in single:
        if service.name == "carbon":
            for index, host in enumerate(ha_push.GRAPHITE_HOSTS):
                result.append(
                    carbon_service(
                        ha_push.cache_service(index),
                        ha_push.node_dir(data_dir, index),
                        tcp_open(ports.carbon_pickle, host),
                        f"{host}:{ports.carbon_pickle} (pickle, from the relay)",
                    )
                )
            factor = ha_push.replication_factor()
            result.append(
                carbon_service(
                    "carbon-relay",
                    ha_push.relay_dir(data_dir),
                    tcp_open(ports.carbon_pickle),
                    f"{loop}:{ports.carbon} (plaintext; each datapoint to {factor} caches)",
                    program="carbon-relay",
                )
            )
        elif service.name == "statsd":
            for index, (port, admin) in enumerate(topology.statsd_nodes):
                config = ha_push.node_config_file(data_dir, index)
                result.append(statsd_service(ha_push.statsd_node_service(index), config, port, admin))
            proxy = ha_push.proxy_config_file(data_dir)
            result.append(
                statsd_service("statsd-proxy", proxy, ports.statsd, ports.statsd_admin, STATSD_PROXY_JS)
            )
        elif service.name == "graphite-web":
            for index, port in enumerate(topology.graphite_webs):
                env = graphite_web_env(ha_push.node_dir(data_dir, index))
                if index == 0:  # on GRAPHITE_PORT, shown by the same render as the single node's
                    result.append(replace(service, name="graphite-web-1", env=env))
                else:
                    result.append(
                        graphite_web_service(f"graphite-web-{index + 1}", port, env, "metrics/index.json")
                    )
        elif service.name == "alertmanager":
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
                    "PROMETHEUS_MULTIPROC_DIR": str(app_run_dir(data_dir, index + 1)),
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
        elif service.name == "loadgen":
            # the users spread over both instances (loadgen/locustfile.py reads LOADGEN_HOSTS)
            hosts = ",".join(f"http://{loop}:{port}" for port in topology.apps)
            result.append(replace(service, env={**service.env, "LOADGEN_HOSTS": hosts}))
        elif service.name == "prometheus":
            for replica, port in topology.prometheis.items():
                result.append(
                    prometheus_service(f"prometheus-{replica}", data_dir / f"prometheus-{replica}", port)
                )
        else:
            result.append(service)
    return result
