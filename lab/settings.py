"""The stack's addresses, from the environment and `.env` (read with python-dotenv, as compose reads it).

The app's own variables (app/config.py) are reused, not repeated; the rest are
the ports of the backends. The native runner binds everything to 127.0.0.1.
"""

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from app.config import DEFAULTS as APP_DEFAULTS
from app.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"  # everything the lab runs outside containers binds here

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
    "ALERT_SINK_PORT": 9095,  # the lab's webhook receiver (lab/alert_sink.py)
    # Native only: VictoriaMetrics stands in for Prometheus 3's OTLP receiver (lab/native.py).
    "OTLP_RECEIVER_PORT": 8428,
}


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


@dataclass(frozen=True)
class Ports:
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
    otlp_receiver: int

    @classmethod
    def from_env(cls, environ=None, dotenv: Path = ROOT / ".env") -> "Ports":
        """The environment wins over `.env`, which wins over the defaults."""
        merged = lab_environment(environ, dotenv)
        values = {}
        for name, default in STACK_DEFAULTS.items():
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
