"""The push side beyond one machine, natively: part of `lab native --ha` (ha.py is the pull side).

- The apps send StatsD to npm statsd's cluster proxy (proxy.js, graphite/statsd/proxy.js) on
  STATSD_PORT. It hashes each metric name onto a ring of two StatsD nodes and takes a node out of the
  ring when its health check (the node's admin port, every `checkInterval`) fails, and back in when
  it answers again: until then the dead node's metrics are lost.
- Both nodes (graphite/statsd/udp.js, each on its own ports) flush to carbon-relay on CARBON_PORT
  (graphite/carbon.conf's [relay]): consistent hashing, each datapoint to 2 of the 3 carbon caches.
- Three graphite nodes, each a carbon-cache on a loopback address of its own (127.0.0.2, .3, .4: three
  hosts, as carbon's DIVERSE_REPLICAS needs them, which keeps a series' copies apart by host string;
  with every cache on 127.0.0.1 a replication factor of 2 silently keeps one copy) and a graphite-web
  on 127.0.0.1 (GRAPHITE_PORT, GRAPHITE_2_PORT, GRAPHITE_3_PORT) reading that cache's whisper files and
  asking the two other nodes for theirs (CLUSTER_SERVERS): each answers for the whole cluster.

Every config is derived from the files in graphite/, the single node's rules (flush interval,
retentions) holding on each node.
"""

import configparser
import json
import subprocess
from pathlib import Path

from ..settings import LOOPBACK, ROOT, STATSD_CONFIG_JS, Ports
from . import native_config as cfg
from .deps import SYSTEM_PYTHON
from .statsd_daemon import admin_counters

STATSD_PROXY_JS = ROOT / "graphite" / "statsd" / "proxy.js"
# the graphite nodes' hosts, one per DESTINATIONS entry of carbon.conf's [relay], in order
GRAPHITE_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def relay_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.optionxform = str  # carbon's keys are upper case
    parser.read_string(cfg.CARBON_CONF.read_text())
    return parser["relay"]


def compose_destinations() -> list[tuple[str, int]]:
    """carbon.conf's [relay] DESTINATIONS, (host, pickle port) on the compose network."""
    destinations = []
    for entry in relay_section()["DESTINATIONS"].split(","):
        host, port = entry.strip().split(":")[:2]
        destinations.append((host, int(port)))
    if len(destinations) != len(GRAPHITE_HOSTS):
        raise ValueError(
            f"{cfg.CARBON_CONF}: [relay] DESTINATIONS names {len(destinations)} carbon caches, "
            f"the native topology runs {len(GRAPHITE_HOSTS)}"
        )
    return destinations


def replication_factor() -> int:
    return int(relay_section()["REPLICATION_FACTOR"])


def relay_destinations(ports: Ports) -> list[str]:
    """The relay's DESTINATIONS natively: each compose graphite node's cache on its loopback host."""
    compose_destinations()  # as many as there are hosts
    return [f"{host}:{ports.carbon_pickle}" for host in GRAPHITE_HOSTS]


def node_dir(data_dir: Path, index: int) -> Path:
    """Graphite node `index`'s own data directory (its cache's config, whisper files, web settings)."""
    return data_dir / f"graphite-{index + 1}"


def relay_dir(data_dir: Path) -> Path:
    """The relay's own directory: its carbon.conf (carbon/carbon.conf), logs and pid file."""
    return data_dir / "carbon-relay"


def relay_conf(data_dir: Path) -> Path:
    return relay_dir(data_dir) / "carbon" / "carbon.conf"


def relay_config(ports: Ports, data_dir: Path) -> str:
    return cfg.carbon_config(ports, relay_dir(data_dir), LOOPBACK, relay_destinations(ports))


def proxy_config_file(data_dir: Path) -> Path:
    return data_dir / "statsd" / "proxy.js"


def node_config_file(data_dir: Path, index: int) -> Path:
    return data_dir / "statsd" / f"node-{index + 1}.js"


# The services' names, as the runner shows them (and pids.json, and `lab experiment --node-failures`).
def cache_service(index: int) -> str:
    """Graphite node `index`'s carbon cache (its host: GRAPHITE_HOSTS[index])."""
    return f"carbon-cache-{index + 1}"


def statsd_node_service(index: int) -> str:
    return f"statsd-{index + 1}"


def cache_of(relay_conf: Path, series: str) -> str:
    """The service name of the first cache carbon's router sends `series` to."""
    host = carbon_hosts_of(relay_conf, [series])[series][0]
    return cache_service(GRAPHITE_HOSTS.index(host))


def nodes_holding(admin_ports: dict[str, int], key: str) -> list[str]:
    """The StatsD nodes (name -> admin port) whose counters have `key` since their last flush: the
    proxy's choice for it, live."""
    return [node for node, port in admin_ports.items() if key in admin_counters(port)]


def cache_config(ports: Ports, data_dir: Path, index: int) -> str:
    return cfg.carbon_config(ports, node_dir(data_dir, index), GRAPHITE_HOSTS[index])


def cluster_servers(webs: list[int], index: int) -> tuple[str, ...]:
    """The other graphite-web nodes, which node `index` asks for what its own cache does not hold."""
    return tuple(f"{LOOPBACK}:{port}" for i, port in enumerate(webs) if i != index)


def proxy_config(ports: Ports, nodes: list[tuple[int, int]]) -> dict:
    """proxy.js's config on loopback: STATSD_PORT and STATSD_ADMIN_PORT, the nodes on theirs."""
    config = json.loads(STATSD_PROXY_JS.read_text())
    if len(config["nodes"]) != len(nodes):
        listed = len(config["nodes"])
        raise ValueError(f"{STATSD_PROXY_JS}: {listed} nodes, the native topology runs {len(nodes)}")
    config.update(
        host=LOOPBACK,
        port=ports.statsd,
        mgmt_address=LOOPBACK,
        mgmt_port=ports.statsd_admin,
        nodes=[{"host": LOOPBACK, "port": port, "adminport": admin} for port, admin in nodes],
    )
    return config


# What a StatsD node behind the proxy needs that the single node does not (statsd's
# docs/cluster_proxy.md: "make sure to have deleteIdleStats: true"). When the ring changes (a node
# dies, or comes back), a metric moves to the other node; without it the node that had it would
# flush it on and on, 0 for a counter, over the live node's counts in the same Graphite series.
# Gauges are kept though (deleteGauges overrides it for them): the in-flight gauge is sent as deltas
# (+1, -1), and one dropped while a slow request is in flight comes back as -1. The cost: after a
# ring change a gauge has a stale copy on the node that had it (docs/beyond-one-machine.md).
NODE_SETTINGS = {"deleteIdleStats": True, "deleteGauges": False}


def node_config(ports: Ports, flush_seconds: int, port: int, admin: int) -> dict:
    """One StatsD node: udp.js as the single node runs it, on its own ports, flushing to the relay
    (which natively takes the single node's carbon port), with NODE_SETTINGS."""
    config = cfg.statsd_config(ports, flush_seconds)
    config.update(port=port, mgmt_port=admin, **NODE_SETTINGS)
    for server in config.get("servers", []):
        server.update(port=port)
    return config


def check_interval_seconds() -> float:
    """How often the proxy checks each node's health, and how long a check waits for an answer."""
    return json.loads(STATSD_PROXY_JS.read_text())["checkInterval"] / 1000


# The compose overlay's StatsD nodes: udp.js flushing to the relay (compose.ha.yaml mounts it);
# generated by `python -m lab.stack.ha`, and tests/test_compose.py fails while it is stale.
STATSD_NODE_JS = STATSD_CONFIG_JS.parent / "udp-ha.js"
COMPOSE_RELAY = "carbon-relay"


def compose_node_config() -> dict:
    config = json.loads(STATSD_CONFIG_JS.read_text())
    config.update(graphiteHost=COMPOSE_RELAY, **NODE_SETTINGS)
    return config


def compose_node_text() -> str:
    # JSON, as udp.js: StatsD reads its config as a JavaScript object, and a comment would stop Python's
    # json from reading it; where it comes from is said in compose.ha.yaml.
    return json.dumps(compose_node_config(), indent=2) + "\n"


# carbon's own router, as carbon-relay runs it: Debian's carbon is for Debian's Python.
ROUTER_SCRIPT = """\
import json, sys
from carbon.conf import settings
from carbon.routers import ConsistentHashingRouter
from carbon.util import parseDestinations
settings.readFrom(sys.argv[1], "relay")
router = ConsistentHashingRouter(settings)
for destination in parseDestinations(settings.DESTINATIONS):
    router.addDestination(destination)
metrics = json.load(sys.stdin)
print(json.dumps({metric: [server for server, _, _ in router.getDestinations(metric)] for metric in metrics}))
"""


def carbon_hosts_of(relay_conf: Path, metrics: list[str]) -> dict[str, list[str]]:
    """The carbon caches (their hosts) the relay configured by `relay_conf` sends each metric to,
    from carbon's ConsistentHashingRouter itself."""
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", ROUTER_SCRIPT, str(relay_conf)],
        input=json.dumps(metrics),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)
