"""The pull side beyond one machine, natively: `lab native --ha` (`make native-ha`).

The single-node stack with its pull side doubled or tripled, each node a process on the loopback:

- two app instances (gunicorn masters on APP_PORT and APP_2_PORT), each with its own multiprocess
  directory; both push to the one StatsD daemon, and over OTLP to two receivers, replica a's and
  replica b's (OTLP_EXTRA_METRICS_ENDPOINTS: a reader and an exporter per receiver in each worker);
- two Prometheus replicas scraping both instances and the worker, each naming itself in
  `external_labels` (replica="a", "b"), each sending its alerts to all three Alertmanagers and
  remote-writing to the long-term store, the replica label dropped on both ways out, so that the two
  copies are identical and can be deduplicated;
- three Alertmanagers in one gossip cluster (`--cluster.listen-address`, `--cluster.peer`): each
  gets every alert from both replicas, and the cluster sends each notification once;
- VictoriaMetrics single-node as the long-term store, deduplicating the replicas' samples to one per
  scrape interval (`-dedup.minScrapeInterval`).

Every config is derived from the files the single-node stack uses (native_config.py), as those are
from the compose stack's. A node of this topology that dies is restarted after RESTART_SECONDS, as
compose's `restart: unless-stopped` would, and the runner says so: kill one (its pid is in the table
the runner prints) and watch the others carry on.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import yaml

from ..settings import (
    GRAFANA_DATASOURCES_YML,
    LOOPBACK,
    PROMETHEUS_YML,
    ROOT,
    Ports,
    PortSet,
)
from . import ha_push
from . import native_config as cfg

# The topology's extra ports, beside the single-node stack's (settings.STACK_DEFAULTS).
HA_DEFAULTS = {
    "APP_2_PORT": 5001,
    "PROMETHEUS_2_PORT": 9091,
    "ALERTMANAGER_2_PORT": 9096,
    "ALERTMANAGER_3_PORT": 9097,
    # Alertmanager's gossip (TCP and UDP), one port each
    "ALERTMANAGER_CLUSTER_PORT": 9194,
    "ALERTMANAGER_2_CLUSTER_PORT": 9196,
    "ALERTMANAGER_3_CLUSTER_PORT": 9197,
    "LONG_TERM_STORE_PORT": 8429,
    # the OTLP push's second receiver, replica b's (Debian's Prometheus has none: VictoriaMetrics, as
    # the single node's OTLP_RECEIVER_PORT)
    "OTLP_RECEIVER_2_PORT": 8430,
    # the push side (ha_push.py): the StatsD nodes behind the proxy, which takes STATSD_PORT and
    # STATSD_ADMIN_PORT (proxy.js's example config's ports), and the second and third graphite-web
    "STATSD_NODE_1_PORT": 8127,
    "STATSD_NODE_1_ADMIN_PORT": 8128,
    "STATSD_NODE_2_PORT": 8129,
    "STATSD_NODE_2_ADMIN_PORT": 8130,
    "GRAPHITE_2_PORT": 8081,
    "GRAPHITE_3_PORT": 8082,
}
REPLICAS = ("a", "b")  # the Prometheus replicas' names, in external_labels
REPLICA_LABEL = "replica"
RESTART_SECONDS = 2.0  # before a node that died is started again
# Alertmanager's default: how long a peer waits, per position in the cluster, for the one before it
# to send a notification. Shortened with the scrape interval, as group_wait is (native_config).
PEER_TIMEOUT_SECONDS = 15


def peer_timeout_seconds(scrape_seconds: float) -> float:
    """--cluster.peer-timeout at a scrape interval: the default at prometheus.yml's, in proportion else."""
    return cfg.shortened(PEER_TIMEOUT_SECONDS, scrape_seconds)


@dataclass(frozen=True)
class HaPorts(PortSet):
    app_2: int
    prometheus_2: int
    alertmanager_2: int
    alertmanager_3: int
    alertmanager_cluster: int
    alertmanager_2_cluster: int
    alertmanager_3_cluster: int
    long_term_store: int
    otlp_receiver_2: int
    statsd_node_1: int
    statsd_node_1_admin: int
    statsd_node_2: int
    statsd_node_2_admin: int
    graphite_2: int
    graphite_3: int

    DEFAULTS: ClassVar[dict[str, int]] = HA_DEFAULTS


@dataclass(frozen=True)
class Topology:
    ports: Ports
    ha: HaPorts

    @property
    def apps(self) -> list[int]:
        return [self.ports.app, self.ha.app_2]

    @property
    def prometheis(self) -> dict[str, int]:
        return dict(zip(REPLICAS, [self.ports.prometheus, self.ha.prometheus_2], strict=True))

    @property
    def alertmanagers(self) -> list[tuple[int, int]]:
        """(web port, gossip port) of each Alertmanager."""
        return [
            (self.ports.alertmanager, self.ha.alertmanager_cluster),
            (self.ha.alertmanager_2, self.ha.alertmanager_2_cluster),
            (self.ha.alertmanager_3, self.ha.alertmanager_3_cluster),
        ]

    @property
    def statsd_nodes(self) -> list[tuple[int, int]]:
        """(UDP port, admin port) of each StatsD node behind the proxy."""
        return [
            (self.ha.statsd_node_1, self.ha.statsd_node_1_admin),
            (self.ha.statsd_node_2, self.ha.statsd_node_2_admin),
        ]

    @property
    def statsd_admins(self) -> dict[str, int]:
        """Each StatsD node's service name -> its admin port."""
        return {ha_push.statsd_node_service(i): admin for i, (_, admin) in enumerate(self.statsd_nodes)}

    @property
    def graphite_webs(self) -> list[int]:
        return [self.ports.graphite, self.ha.graphite_2, self.ha.graphite_3]

    @property
    def long_term_store(self) -> str:
        return f"http://{LOOPBACK}:{self.ha.long_term_store}"


def prometheus_config(topology: Topology, replica: str, scrape_interval: str | None) -> dict:
    """The single-node prometheus.yml for one replica: both app instances, every Alertmanager, the
    long-term store, and its name in external_labels, dropped from what it sends on."""
    config = cfg.prometheus_config(topology.ports, scrape_interval)
    app = f"{LOOPBACK}:{topology.ports.app}"
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            if app in static["targets"]:
                static["targets"] += [f"{LOOPBACK}:{port}" for port in topology.apps[1:]]
            static["targets"] = [
                f"{LOOPBACK}:{topology.prometheis[replica]}" if job["job_name"] == "prometheus" else t
                for t in static["targets"]
            ]
    config["global"]["external_labels"] = {REPLICA_LABEL: replica}
    # Every Prometheus sends to every Alertmanager (not to one, nor to a load balancer): the cluster
    # deduplicates what the replicas send, once their alerts are identical.
    config["alerting"] = {
        "alert_relabel_configs": drop_replica(),
        "alertmanagers": [
            {"static_configs": [{"targets": [f"{LOOPBACK}:{web}" for web, _ in topology.alertmanagers]}]}
        ],
    }
    config["remote_write"] = [
        {"url": f"{topology.long_term_store}/api/v1/write", "write_relabel_configs": drop_replica()}
    ]
    return config


def alertmanager_argv(topology: Topology, data_dir: Path, index: int, peer_timeout: float) -> list[str]:
    """One Alertmanager of the cluster: its own storage, gossip with the two others."""
    web, gossip = topology.alertmanagers[index]
    peers = [f"{LOOPBACK}:{port}" for i, (_, port) in enumerate(topology.alertmanagers) if i != index]
    cluster = [
        f"--cluster.listen-address={LOOPBACK}:{gossip}",
        f"--cluster.advertise-address={LOOPBACK}:{gossip}",
        *[f"--cluster.peer={peer}" for peer in peers],
        f"--cluster.peer-timeout={peer_timeout:g}s",
    ]
    return cfg.alertmanager_argv(topology.ports, data_dir, web, f"data-{index + 1}", cluster)


def store_argv(port: int, storage: Path, dedup_seconds: float | None) -> list[str]:
    """VictoriaMetrics single-node's flags as the long-term store: a year kept, answers including the
    latest samples, one sample kept per `dedup_seconds` (None: every sample it is sent)."""
    argv = [
        f"-httpListenAddr={LOOPBACK}:{port}",
        f"-storageDataPath={storage}",
        "-retentionPeriod=1y",
        "-search.latencyOffset=0s",
    ]
    if dedup_seconds is not None:
        argv.append(f"-dedup.minScrapeInterval={dedup_seconds:g}s")
    return argv


# How late the long-term store may hold a scrape: each replica's remote write sends a batch once it is
# full or this old (Prometheus's default batch_send_deadline, which the configs keep), and
# VictoriaMetrics makes what it took searchable about a second after.
STORE_LAG_SECONDS = 5 + 2


def long_term_store_argv(topology: Topology, data_dir: Path, scrape_seconds: float) -> list[str]:
    """VictoriaMetrics single-node taking both replicas' remote write, one sample per scrape interval
    kept of the two copies."""
    return store_argv(topology.ha.long_term_store, data_dir / "long-term-store" / "data", scrape_seconds)


# The compose overlay's twin of prometheus_config: the same file, for both replicas, read by
# compose.ha.yaml's two Prometheus services (each sets PROMETHEUS_REPLICA, expanded in
# external_labels by --enable-feature=expand-external-labels). Generated from prometheus.yml by
# `python -m lab.stack.ha`; tests/test_compose.py fails while the committed file is stale.
PROMETHEUS_HA_YML = PROMETHEUS_YML.parent / "prometheus-ha.yml"
COMPOSE_ALERTMANAGERS = ("alertmanager:9093", "alertmanager-2:9093", "alertmanager-3:9093")
COMPOSE_LONG_TERM_STORE = "http://long-term-store:8428"


def drop_replica() -> list[dict]:
    """The relabeling that drops the replica's name from what it sends on (alerts, remote write)."""
    return [{"action": "labeldrop", "regex": REPLICA_LABEL}]


def compose_prometheus_config() -> dict:
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"]["external_labels"] = {REPLICA_LABEL: "${PROMETHEUS_REPLICA}"}
    config["alerting"] = {
        "alert_relabel_configs": drop_replica(),
        "alertmanagers": [{"static_configs": [{"targets": list(COMPOSE_ALERTMANAGERS)}]}],
    }
    config["remote_write"] = [
        {"url": f"{COMPOSE_LONG_TERM_STORE}/api/v1/write", "write_relabel_configs": drop_replica()}
    ]
    return config


def compose_prometheus_text() -> str:
    reader = "compose.ha.yaml's two Prometheus replicas read it; each names itself in PROMETHEUS_REPLICA."
    return generated(PROMETHEUS_YML, reader) + yaml.safe_dump(compose_prometheus_config(), sort_keys=False)


# Grafana in the overlay: the base datasources, and the two other PromQL backends that hold the scrape's
# series, replica b and the long-term store, which the pull dashboards' `datasource` variable offers
# beside the base Prometheus (replica a here). compose.ha.yaml mounts this directory over the base
# one; generated from the base file by `python -m lab.stack.ha`, and tests/test_compose.py fails
# while the committed file is stale. uid -> (name, URL in compose).
GRAFANA_HA_DATASOURCES_YML = ROOT / "grafana" / "provisioning-ha" / "datasources" / "datasources.yml"
SCRAPE_DATASOURCES = {
    "prometheus-2": ("Prometheus replica b", "http://prometheus-2:9090"),
    "long-term-store": ("Long-term store", COMPOSE_LONG_TERM_STORE),
}


def compose_grafana_datasources() -> dict:
    """The base datasources, and each of SCRAPE_DATASOURCES read as the default (the scrape's) is,
    at the same scrape interval; their alerting rules are not listed again (only replica a's are)."""
    config = yaml.safe_load(GRAFANA_DATASOURCES_YML.read_text())
    (scrape,) = [source for source in config["datasources"] if source.get("isDefault")]
    interval = scrape["jsonData"]["timeInterval"]
    for uid, (name, address) in SCRAPE_DATASOURCES.items():
        config["datasources"].append(
            {
                "name": name,
                "uid": uid,
                "type": scrape["type"],
                "access": scrape["access"],
                "url": address,
                "jsonData": {"timeInterval": interval, "manageAlerts": False},
            }
        )
    return config


def generated(source: Path, reader: str) -> str:
    """The header of a file made from `source` by this module."""
    return (
        f"# Generated from {source.relative_to(ROOT)} by `python -m lab.stack.ha` (lab/stack/ha.py): "
        f"do not edit.\n# {reader}\n"
    )


def compose_grafana_datasources_text() -> str:
    reader = "compose.ha.yaml mounts it in Grafana, over the base datasources' directory."
    return generated(GRAFANA_DATASOURCES_YML, reader) + yaml.safe_dump(
        compose_grafana_datasources(), sort_keys=False
    )


if __name__ == "__main__":
    for path, text in (
        (PROMETHEUS_HA_YML, compose_prometheus_text()),
        (GRAFANA_HA_DATASOURCES_YML, compose_grafana_datasources_text()),
        (ha_push.STATSD_NODE_JS, ha_push.compose_node_text()),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
