"""Derive the native stack's configuration from the files the containers mount.

One source of truth: each function reads the compose stack's file and swaps
only what differs outside the compose network, namely host names, ports and
directories (plus the two intervals tests shorten, kept consistent).
"""

import json
import re
from pathlib import Path

import yaml

from app.signals import prometheus_name

from ..rules import RULE_FILES
from ..settings import (
    COLLECTD_CONF,
    LOOPBACK,
    PROMETHEUS_YML,
    ROOT,
    STATSD_CONFIG_JS,
    Ports,
    duration_seconds,
    prometheus_scrape_seconds,
    statsd_flush_seconds,
)

# VictoriaMetrics stands in for Prometheus 3's OTLP receiver (Debian's Prometheus has none):
# where the app pushes to it (OTLP_RECEIVER_PATH, lab/backends.py), and what makes it store what
# Prometheus 3 would.
# Prometheus 3 keeps every resource attribute in target_info only, job and instance
# aside; VictoriaMetrics puts them on each series. The SDK's own, and the namespace:
RESOURCE_LABELS = ("service_name", "service_namespace", "service_instance_id", "telemetry_sdk_.*")

ALERTMANAGER_YML = ROOT / "alertmanager" / "alertmanager.yml"
# The route timings that follow a shortened scrape interval (see alertmanager_config).
ALERTMANAGER_TIMINGS = ("group_wait", "group_interval")
CARBON_CONF = ROOT / "graphite" / "carbon.conf"
STORAGE_SCHEMAS = ROOT / "graphite" / "storage-schemas.conf"
STORAGE_AGGREGATION = ROOT / "graphite" / "storage-aggregation.conf"
COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose_addresses(ports: Ports) -> dict[tuple[str, int], str]:
    """Where each address of the compose network is reached natively."""
    return {
        ("localhost", 9090): f"{LOOPBACK}:{ports.prometheus}",
        ("prometheus", 9090): f"{LOOPBACK}:{ports.prometheus}",
        ("app", 5000): f"{LOOPBACK}:{ports.app}",
        ("worker", 8000): f"{LOOPBACK}:{ports.worker}",
        ("alertmanager", 9093): f"{LOOPBACK}:{ports.alertmanager}",
        ("alert-sink", 9095): f"{LOOPBACK}:{ports.alert_sink}",
        ("node-exporter", 9100): f"{LOOPBACK}:{ports.node_exporter}",
    }


def prometheus_config(ports: Ports, scrape_interval: str | None = None) -> dict:
    """prometheus.yml with compose targets (static or DNS) turned into loopback targets."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    addresses = compose_addresses(ports)

    def native(host: str, port: int) -> str:
        try:
            return addresses[(host, int(port))]
        except KeyError:
            raise ValueError(f"{PROMETHEUS_YML}: no native address for target {host}:{port}") from None

    for alertmanagers in config.get("alerting", {}).get("alertmanagers", []):
        for static in alertmanagers["static_configs"]:
            static["targets"] = [native(*target.rsplit(":", 1)) for target in static["targets"]]
    for job in config["scrape_configs"]:
        targets = [
            native(*target.rsplit(":", 1))
            for static in job.pop("static_configs", [])
            for target in static["targets"]
        ]
        targets += [
            native(name, dns["port"]) for dns in job.pop("dns_sd_configs", []) for name in dns["names"]
        ]
        job["static_configs"] = [{"targets": targets}]
        if scrape_interval:
            job.pop("scrape_interval", None)
    # Debian's Prometheus 2 does not know the section; natively, VictoriaMetrics receives OTLP.
    config.pop("otlp", None)
    # Relative rule paths resolve against the config file, which natively is
    # written elsewhere: point them at the shared prometheus/ directory.
    config["rule_files"] = [str(PROMETHEUS_YML.parent / path) for path in config.get("rule_files", [])]
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    return config


def shortened(seconds: float, scrape_seconds: float) -> float:
    """A duration set for prometheus.yml's scrape interval, at another (the tests' 1 s) in proportion:
    what took so many scrapes still does."""
    return seconds * scrape_seconds / prometheus_scrape_seconds()


def scaled_rule_files(rules_dir: Path, scrape_interval: str) -> list[str]:
    """The rule files (lab/rules.py's RULE_FILES) with each group's own `interval` shortened with a
    shortened scrape interval (the tests': the once-a-minute SLO groups run every 12 s at 1 s
    scrapes), written to `rules_dir`. The paths, for prometheus.yml."""
    scrape = duration_seconds(scrape_interval)
    rules_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in RULE_FILES:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            if "interval" in group:
                seconds = max(scrape, round(shortened(duration_seconds(group["interval"]), scrape)))
                group["interval"] = f"{seconds:g}s"
        (rules_dir / path.name).write_text(yaml.safe_dump(document, sort_keys=False))
        written.append(str(rules_dir / path.name))
    return written


def statsd_config(ports: Ports, flush_seconds: int) -> dict:
    """udp.js on loopback ports; admin interface on loopback too."""
    config = json.loads(STATSD_CONFIG_JS.read_text())
    config.update(
        graphiteHost=LOOPBACK,
        graphitePort=ports.carbon,
        address=LOOPBACK,
        port=ports.statsd,
        mgmt_address=LOOPBACK,
        mgmt_port=ports.statsd_admin,
        flushInterval=flush_seconds * 1000,
        automaticConfigReload=False,
    )
    for server in config.get("servers", []):
        server.update(address=LOOPBACK, port=ports.statsd)
    return config


def carbon_config(
    ports: Ports, data_dir: Path, interface: str = LOOPBACK, destinations: list[str] | None = None
) -> str:
    """carbon.conf with `interface` for every listener, our ports and directories under data_dir; for
    the HA topology's relay, its DESTINATIONS on this machine (ha_push.py)."""
    replacements = {
        "LINE_RECEIVER_PORT": ports.carbon,
        "PICKLE_RECEIVER_PORT": ports.carbon_pickle,
        "CACHE_QUERY_PORT": ports.carbon_query,
    }
    lines = []
    for line in CARBON_CONF.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key.endswith("_INTERFACE"):
            line = f"{key} = {interface}"
        elif key in replacements:
            line = f"{key} = {replacements[key]}"
        elif key == "DESTINATIONS" and destinations is not None:
            line = f"{key} = {', '.join(destinations)}"
        lines.append(line)
        if line.strip() in ("[cache]", "[relay]"):  # the relay reads its own section only
            lines += [
                f"STORAGE_DIR = {data_dir / 'graphite'}",
                f"LOCAL_DATA_DIR = {whisper_dir(data_dir)}",
                f"WHITELISTS_DIR = {data_dir / 'graphite' / 'lists'}",
                f"CONF_DIR = {data_dir / 'carbon'}",
                f"LOG_DIR = {data_dir / 'logs'}",
                f"PID_DIR = {data_dir / 'run'}",
            ]
    return "\n".join(lines) + "\n"


def storage_schemas(flush_seconds: int) -> str:
    """The schemas, with the finest StatsD archive following the flush interval."""
    shared = f"{statsd_flush_seconds()}s:"
    return re.sub(
        rf"^(retentions\s*=\s*){re.escape(shared)}",
        rf"\g<1>{flush_seconds}s:",
        STORAGE_SCHEMAS.read_text(),
        flags=re.MULTILINE,
    )


def node_exporter_argv(ports: Ports) -> list[str]:
    """The compose node-exporter service's command, on loopback: the same collectors, reading this
    machine's /proc and /sys where they are (the container reads the host's, mounted elsewhere)."""
    command = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["node-exporter"]["command"]
    kept = [flag for flag in command if not flag.startswith("--path.")]
    return [*kept, f"--web.listen-address={LOOPBACK}:{ports.node_exporter}"]


def collectd_config_file(data_dir: Path) -> Path:
    return data_dir / "collectd" / "collectd.conf"


def collectd_config(ports: Ports, data_dir: Path, interval_seconds: int) -> str:
    """collectd.conf writing to carbon on loopback, every `interval_seconds` (the flush interval,
    which carbon's finest archive follows), its pid file, socket and plugin state under data_dir."""
    replacements = {
        "Host": f'"{LOOPBACK}"',
        "Port": f'"{ports.carbon}"',
        "Interval": str(interval_seconds),
        "SocketFile": f'"{data_dir / "run" / "collectd.sock"}"',
    }
    lines = [f'BaseDir "{data_dir / "collectd"}"', f'PIDFile "{data_dir / "run" / "collectd.pid"}"']
    for line in COLLECTD_CONF.read_text().splitlines():
        key = line.split(None, 1)[0] if line.strip() else ""
        if key in replacements:
            indent = line[: len(line) - len(line.lstrip())]
            line = f"{indent}{key} {replacements[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def loadgen_argv(ports: Ports) -> list[str]:
    """The compose loadgen service's command, for the venv's Locust on loopback.

    The command holds only addresses (the options are in loadgen/locust.conf,
    named by --config): its mount becomes the repository's directory, the
    app's compose address its loopback port, and the web UI binds loopback.
    """
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["loadgen"]
    (mount,) = compose["volumes"]
    source, target = mount.split(":")[:2]
    local = {target: str(ROOT / source)}
    local.update(
        (f"http://{host}:{port}", f"http://{native}")
        for (host, port), native in compose_addresses(ports).items()
    )
    argv = []
    for option in compose["command"]:
        for compose_value, native in local.items():
            option = option.replace(compose_value, native)
        argv.append(option)
    return [*argv, f"--web-host={LOOPBACK}", f"--web-port={ports.loadgen}"]


def whisper_dir(data_dir: Path) -> Path:
    return data_dir / "graphite" / "whisper"


def graphite_web_settings(
    ports: Ports,
    data_dir: Path,
    secret_key: str,
    carbon_host: str = LOOPBACK,
    cluster_servers: tuple[str, ...] = (),
) -> str:
    """A graphite-web settings module for Debian's graphite-web (GRAPHITE_SETTINGS_MODULE).

    graphite.settings imports it first and derives the rest from it, so all the
    paths below land in data_dir, not in /var/lib/graphite. In the HA topology (ha_push.py) a node
    reads its own carbon cache, on `carbon_host`, and asks the `cluster_servers` for the rest.
    """
    storage = data_dir / "graphite"
    database = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(storage / "graphite.db")}}
    return f"""\
# Written by `python -m lab native` for this data directory; rewritten at each start.
SECRET_KEY = {secret_key!r}
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STORAGE_DIR = {str(storage)!r}
CONF_DIR = {str(storage)!r}
WHISPER_DIR = {str(whisper_dir(data_dir))!r}
STANDARD_DIRS = [WHISPER_DIR]
INDEX_FILE = {str(storage / "index")!r}
LOG_DIR = {str(data_dir / "logs")!r}
LOG_ROTATION = False
DATABASES = {database!r}
# Points still in carbon's cache are merged into renders (carbon's CACHE_QUERY_PORT).
CARBONLINK_HOSTS = ["{carbon_host}:{ports.carbon_query}:a"]
CARBONLINK_TIMEOUT = 1.0
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
""" + (cluster_settings(cluster_servers) if cluster_servers else "")


def cluster_settings(cluster_servers: tuple[str, ...]) -> str:
    """A graphite-web node of a cluster: find and render ask every other node (with local=1, so that
    they answer from their own data only), and a series found on several (carbon-relay's replicas)
    is merged, each node's gaps filled from the others' points (graphite-web's default, said here)."""
    return f"""\
CLUSTER_SERVERS = {list(cluster_servers)!r}
REMOTE_STORE_MERGE_RESULTS = True
"""


def otlp_receiver_argv(port: int, data_dir: Path, name: str = "otlp-receiver") -> list[str]:
    """VictoriaMetrics's options (after the binary) as the native stack's OTLP receiver.

    Prometheus 3's naming (`-opentelemetry.usePrometheusNaming`, the relabeling
    below). Queries see a sample once it is searchable, 2-3 s after it arrives
    (its buffers flush every 2 s), with no latency offset on top (the default
    hides the newest 30 s). Every sample is kept (no -dedup.minScrapeInterval):
    the lab counts exactly. `name`: its storage's directory (the HA topology has two receivers).
    """
    return [
        f"-httpListenAddr={LOOPBACK}:{port}",
        f"-storageDataPath={data_dir / name / 'data'}",
        "-retentionPeriod=15d",  # Prometheus's default
        "-opentelemetry.usePrometheusNaming",
        f"-relabelConfig={otlp_relabel_file(data_dir)}",
        "-search.latencyOffset=0s",
    ]


def otlp_relabel_file(data_dir: Path) -> Path:
    return data_dir / "otlp-receiver" / "relabel.yml"


def write_otlp_relabel(data_dir: Path, resource_attributes: str = "") -> None:
    """Write the receiver's relabeling (otlp_relabel_config) where its flags name it."""
    path = otlp_relabel_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(otlp_relabel_config(resource_attributes), sort_keys=False))


def otlp_relabel_config(resource_attributes: str) -> list[dict]:
    """Relabeling that gives VictoriaMetrics's OTLP series Prometheus 3's default labels.

    Prometheus 3 turns service.name into `job` (namespace/name when
    service.namespace is set) and service.instance.id into `instance`, and keeps
    the other resource attributes in target_info only. `resource_attributes` is
    the app's OTEL_RESOURCE_ATTRIBUTES (key=value,...): those keys are dropped too.
    """
    from_env = [
        prometheus_name(item.split("=", 1)[0]) for item in resource_attributes.split(",") if "=" in item
    ]
    return [
        {"action": "labelmap", "regex": "service_name", "replacement": "job"},
        {
            "source_labels": ["service_namespace", "service_name"],
            "regex": "(.+);(.+)",
            "target_label": "job",
            "replacement": "$1/$2",
        },
        {"action": "labelmap", "regex": "service_instance_id", "replacement": "instance"},
        {"action": "labeldrop", "regex": "|".join((*RESOURCE_LABELS, *from_env))},
    ]


def alertmanager_config(ports: Ports, scrape_interval: str | None = None) -> dict:
    """alertmanager.yml with the webhook sink's compose address turned into its loopback one.

    A shortened scrape interval (the tests') shortens group_wait and group_interval
    in proportion, so an alert still reaches the sink in the same number of scrapes.
    """
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    addresses = {
        f"http://{host}:{port}/": f"http://{native}/"
        for (host, port), native in compose_addresses(ports).items()
    }
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            for compose, native in addresses.items():
                if webhook["url"].startswith(compose):
                    webhook["url"] = native + webhook["url"].removeprefix(compose)
                    break
            else:
                raise ValueError(f"{ALERTMANAGER_YML}: no native address for webhook {webhook['url']}")
    if scrape_interval:
        for name in ALERTMANAGER_TIMINGS:
            timing = shortened(duration_seconds(config["route"][name]), duration_seconds(scrape_interval))
            config["route"][name] = f"{max(1, round(timing))}s"
    return config


def alertmanager_argv(
    ports: Ports,
    data_dir: Path,
    web: int | None = None,
    storage: str = "data",
    cluster: list[str] | None = None,
) -> list[str]:
    """Debian's prometheus-alertmanager (after the binary) on loopback: alone, with no gossip port on
    every interface; or, given its `web` port, its `storage` directory and its `cluster` flags, one
    node of a cluster (ha.py)."""
    web = web or ports.alertmanager
    return [
        f"--config.file={alertmanager_config_file(data_dir)}",
        f"--storage.path={data_dir / 'alertmanager' / storage}",
        f"--web.listen-address={LOOPBACK}:{web}",
        f"--web.external-url=http://{LOOPBACK}:{web}",
        *(cluster if cluster is not None else ["--cluster.listen-address="]),
    ]


def alertmanager_config_file(data_dir: Path) -> Path:
    return data_dir / "alertmanager" / "alertmanager.yml"
