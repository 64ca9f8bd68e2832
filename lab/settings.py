"""The stack's numbers, read once: its addresses from the environment and `.env` (read with
python-dotenv, as compose reads it), its intervals from the config files the containers mount,
and the few facts every command shares (the pipelines, the phases, the route under test).

The app's own variables (app/config.py) are reused, not repeated; the rest are
the ports of the backends. The native runner binds everything to 127.0.0.1.
"""

import functools
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import yaml
from dotenv import dotenv_values

from app.config import DEFAULTS as APP_DEFAULTS
from app.config import ConfigError
from app.labels import Route

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"  # everything the lab runs outside containers binds here
# A StatsD host that never resolves: the C resolver refuses the space at once, so no DNS query leaves.
UNRESOLVABLE = "statsd host.invalid"
PROMETHEUS_YML = ROOT / "prometheus" / "prometheus.yml"
# The backends Grafana reads, with the fixed uids the dashboards name.
GRAFANA_DATASOURCES_YML = ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml"
STATSD_CONFIG_JS = ROOT / "graphite" / "statsd" / "udp.js"
COLLECTD_CONF = ROOT / "collectd" / "collectd.conf"
# Pull, StatsD push, OTLP push: each pipeline's backend key in result.json (the truth's is "truth").
BACKENDS = ("prometheus", "graphite", "otel")
# The experiment's phases, in order (`lab experiment`, its report and the tests' expectations).
PHASES = ("baseline", "error burst", "latency burst", "recovery")
# The URL rule the experiment, the scenarios and the tests load.
ROUTE_UNDER_TEST = "/"

STACK_DEFAULTS = {
    "APP_PORT": APP_DEFAULTS["APP_PORT"],
    "WORKER_PORT": APP_DEFAULTS["WORKER_PORT"],
    "PROMETHEUS_PORT": 9090,
    "GRAPHITE_PORT": 8080,
    "STATSD_PORT": APP_DEFAULTS["STATSD_PORT"],
    "STATSD_ADMIN_PORT": 8126,
    "CARBON_PORT": 2003,
    "CARBON_PICKLE_PORT": 2004,
    "CARBON_QUERY_PORT": 7002,
    "GRAFANA_PORT": 3000,
    "LOADGEN_PORT": 8089,
    "ALERTMANAGER_PORT": 9093,
    "ALERT_SINK_PORT": 9095,  # the lab's webhook receiver (lab/stack/alert_sink.py)
    "NODE_EXPORTER_PORT": 9100,  # the host's metrics, pulled (collectd pushes them: no port)
    # Native only: VictoriaMetrics stands in for Prometheus 3's OTLP receiver (lab/stack/native.py).
    "OTLP_RECEIVER_PORT": 8428,
}


def duration_seconds(text: str) -> float:
    """A Prometheus duration (`5s`, `1m`, `500ms`, `30d`) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * units[unit]
    raise ValueError(f"{text!r}: not a Prometheus duration")


def prometheus_scrape_seconds() -> float:
    """The scrape interval of the shared prometheus.yml (seconds): written there and nowhere else."""
    return duration_seconds(yaml.safe_load(PROMETHEUS_YML.read_text())["global"]["scrape_interval"])


def collectd_interval_seconds() -> int:
    """How often collectd reads and pushes the host (collectd/collectd.conf's Interval, seconds)."""
    (interval,) = re.findall(r"^Interval\s+(\d+)", COLLECTD_CONF.read_text(), re.MULTILINE)
    return int(interval)


def statsd_flush_seconds() -> int:
    """StatsD's flush interval in the shared config (seconds)."""
    return json.loads(STATSD_CONFIG_JS.read_text())["flushInterval"] // 1000


@functools.cache
def route(template: str) -> Route:
    """One of the app's URL rules as app.labels names it: its template and its endpoint (the StatsD name)."""
    from flask import Flask

    from app import labels, views

    app = Flask("lab")
    views.init_app(app)
    (rule,) = (rule for rule in app.url_map.iter_rules() if rule.rule == template)
    return labels.route_of(rule)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on now, on the loopback (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables a `.env` file sets, read by python-dotenv as compose reads them ({} if none)."""
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def lab_environment(environ=None, dotenv: Path = ROOT / ".env") -> dict[str, str]:
    """The lab's variables as compose sees them: the environment wins over `.env`."""
    return {**read_dotenv(dotenv), **(os.environ if environ is None else environ)}


def app_environment(environ=None, dotenv: Path = ROOT / ".env") -> dict[str, str]:
    """The app's own settings (app/config.py) from the environment and `.env`."""
    return {name: value for name, value in lab_environment(environ, dotenv).items() if name in APP_DEFAULTS}


class PortSet:
    """A set of `NAME_PORT` variables, one field each (`name`), with their defaults in DEFAULTS."""

    DEFAULTS: ClassVar[dict[str, int]]

    @classmethod
    def from_env(cls, environ=None, dotenv: Path = ROOT / ".env"):
        """The environment wins over `.env`, which wins over the defaults; a ConfigError names a bad value."""
        merged = lab_environment(environ, dotenv)
        values = {}
        for name, default in cls.DEFAULTS.items():
            raw = merged.get(name) or default
            try:
                port = int(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r}: expected a port number") from None
            if not 0 < port < 65536:
                raise ConfigError(f"{name}={raw!r}: expected a port number from 1 to 65535")
            values[name.removesuffix("_PORT").lower()] = port
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        return {f"{field.upper()}_PORT": str(port) for field, port in vars(self).items()}


@dataclass(frozen=True)
class Ports(PortSet):
    app: int
    worker: int
    prometheus: int
    graphite: int
    statsd: int
    statsd_admin: int
    carbon: int
    carbon_pickle: int
    carbon_query: int
    grafana: int
    loadgen: int
    alertmanager: int
    alert_sink: int
    node_exporter: int
    otlp_receiver: int

    DEFAULTS: ClassVar[dict[str, int]] = STACK_DEFAULTS
