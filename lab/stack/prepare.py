"""The native stack's data directory, before anything starts: every config derived from the files the
containers mount (lab/stack/native_config.py, and ha.py, ha_push.py for the HA topology), graphite-web's
settings and database. Written at every start, so that a change to a shared file shows at the next.
"""

import json
import os
import secrets
import subprocess
from pathlib import Path

import yaml

from ..settings import Ports, app_environment, lab_environment
from . import ha, ha_push
from . import native_config as cfg
from .deps import SYSTEM_PYTHON


def system_env(extra: dict[str, str]) -> dict[str, str]:
    # Debian's Python runs graphite: keep the venv's interpreter settings out.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    return {**env, **extra}


def prepare(
    ports: Ports,
    data_dir: Path,
    flush_seconds: int,
    scrape_interval: str | None,
    topology: ha.Topology | None = None,
) -> dict[str, str]:
    """Write every derived config under data_dir, the HA topology's too; return graphite-web's env."""
    for sub in (
        "carbon",
        "graphite",
        "logs",
        "run",
        "prometheus",
        "statsd",
        "otlp-receiver",
        "alertmanager",
        "collectd",
    ):
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
    cfg.collectd_config_file(data_dir).write_text(cfg.collectd_config(ports, data_dir, flush_seconds))
    (data_dir / "statsd" / "config.js").write_text(
        json.dumps(cfg.statsd_config(ports, flush_seconds), indent=2)
    )
    prometheus = cfg.prometheus_config(ports, scrape_interval)
    prometheus["rule_files"] = rules or prometheus["rule_files"]
    (data_dir / "prometheus" / "prometheus.yml").write_text(yaml.safe_dump(prometheus, sort_keys=False))
    alertmanager = cfg.alertmanager_config(ports, scrape_interval)
    cfg.alertmanager_config_file(data_dir).write_text(yaml.safe_dump(alertmanager, sort_keys=False))
    cfg.write_otlp_relabel(data_dir, app_environment().get("OTEL_RESOURCE_ATTRIBUTES", ""))
    secret_file = data_dir / "graphite" / "secret_key"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    if not secret_file.exists():
        secret_file.write_text(lab_environment().get("GRAPHITE_SECRET_KEY") or secrets.token_urlsafe(48))
    secret = secret_file.read_text().strip()
    if topology is None:
        carbon = cfg.carbon_config(ports, data_dir)
        return prepare_graphite_node(ports, data_dir, flush_seconds, carbon, secret)
    # the push side beyond one machine: the StatsD proxy and its nodes, the relay, three graphite nodes
    ha_push.proxy_config_file(data_dir).write_text(
        json.dumps(ha_push.proxy_config(ports, topology.statsd_nodes), indent=2)
    )
    for index, (port, admin) in enumerate(topology.statsd_nodes):
        ha_push.node_config_file(data_dir, index).write_text(
            json.dumps(ha_push.node_config(ports, flush_seconds, port, admin), indent=2)
        )
    relay = ha_push.relay_dir(data_dir)
    for sub in ("carbon", "logs", "run"):
        (relay / sub).mkdir(parents=True, exist_ok=True)
    ha_push.relay_conf(data_dir).write_text(ha_push.relay_config(ports, data_dir))
    # carbon-relay will not start without the schemas beside its config, though it stores nothing
    (relay / "carbon" / "storage-schemas.conf").write_text(cfg.storage_schemas(flush_seconds))
    for index, host in enumerate(ha_push.GRAPHITE_HOSTS):
        graphite_env = prepare_graphite_node(
            ports,
            ha_push.node_dir(data_dir, index),
            flush_seconds,
            ha_push.cache_config(ports, data_dir, index),
            secret,
            host,
            ha_push.cluster_servers(topology.graphite_webs, index),
        )
    return graphite_env


def prepare_graphite_node(
    ports: Ports,
    node: Path,
    flush_seconds: int,
    carbon: str,
    secret: str,
    carbon_host: str = cfg.LOOPBACK,
    cluster: tuple[str, ...] = (),
) -> dict[str, str]:
    """A carbon cache's config (`carbon`) and graphite-web's settings and database under `node` (the
    data dir; a graphite node's own in the HA topology); return graphite-web's environment."""
    for sub in ("carbon", "graphite", "logs", "run"):
        (node / sub).mkdir(parents=True, exist_ok=True)
    cfg.whisper_dir(node).mkdir(parents=True, exist_ok=True)
    (node / "carbon" / "carbon.conf").write_text(carbon)
    (node / "carbon" / "storage-schemas.conf").write_text(cfg.storage_schemas(flush_seconds))
    (node / "carbon" / "storage-aggregation.conf").write_text(cfg.STORAGE_AGGREGATION.read_text())
    (node / "graphite" / "lab_graphite_settings.py").write_text(
        cfg.graphite_web_settings(ports, node, secret, carbon_host, cluster)
    )
    graphite_env = graphite_web_env(node)
    subprocess.run(
        [SYSTEM_PYTHON, "-m", "django", "migrate", "--noinput"],
        env=system_env(graphite_env),
        check=True,
        capture_output=True,
    )
    return graphite_env


def graphite_web_env(node: Path) -> dict[str, str]:
    """What Debian's graphite-web needs to read the settings prepare_graphite_node wrote under `node`."""
    return {
        "PYTHONPATH": str(node / "graphite"),
        "GRAPHITE_SETTINGS_MODULE": "lab_graphite_settings",
        "DJANGO_SETTINGS_MODULE": "graphite.settings",
    }
