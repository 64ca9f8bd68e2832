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
    LOOPBACK,
    PROMETHEUS_YML,
    ROOT,
    Ports,
    PortSet,
)
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


def long_term_store_argv(topology: Topology, data_dir: Path, scrape_seconds: float) -> list[str]:
    """VictoriaMetrics single-node taking both replicas' remote write, one sample per scrape interval
    kept of the two copies."""
    return [
        f"-httpListenAddr={LOOPBACK}:{topology.ha.long_term_store}",
        f"-storageDataPath={data_dir / 'long-term-store' / 'data'}",
        "-retentionPeriod=1y",
        f"-dedup.minScrapeInterval={scrape_seconds:g}s",
        "-search.latencyOffset=0s",
    ]


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
    header = (
        "# Generated from prometheus.yml by `python -m lab.stack.ha` (lab/stack/ha.py): do not edit.\n"
        "# compose.ha.yaml's two Prometheus replicas read it; each names itself in PROMETHEUS_REPLICA.\n"
    )
    return header + yaml.safe_dump(compose_prometheus_config(), sort_keys=False)


if __name__ == "__main__":
    PROMETHEUS_HA_YML.write_text(compose_prometheus_text())
    print(f"wrote {PROMETHEUS_HA_YML.relative_to(ROOT)}")
