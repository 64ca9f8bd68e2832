"""The app's configuration, read from the environment in one place.

Every setting's default is written here and nowhere else: compose passes
`${VAR:-}` (empty means "the default below"), and a test checks `.env.example`
against these values. Compose reads `.env`; the native runner, `make run` and
the `lab` commands read the same file with python-dotenv.
"""

import os
from collections.abc import Mapping

from . import signals

METRICS_MODES = ("off", "prometheus", "statsd", "all")

DEFAULTS = {
    "APP_HOST": "127.0.0.1",
    "APP_PORT": 5000,
    "WORKER_HOST": "127.0.0.1",
    "WORKER_PORT": 8000,
    "STATSD_HOST": "graphite",
    "STATSD_PORT": 8125,
    "STATSD_PREFIX": signals.STATSD_PREFIX,
    # How often each process pushes its in-flight delta, and retries a host
    # that did not resolve (seconds). Neither is on the request path.
    "STATSD_GAUGE_INTERVAL": 1.0,
    "STATSD_RESOLVE_INTERVAL": 30.0,
    "GUNICORN_WORKERS": 4,
    "GUNICORN_THREADS": 1,
    "GUNICORN_MAX_REQUESTS": 0,
    "LAB_METRICS": "all",
    # The post's /database/ sleeps a random 1-3 s; tests shorten it.
    "DB_DELAY_MIN_SECONDS": 1.0,
    "DB_DELAY_MAX_SECONDS": 3.0,
    # Bearer token for PUT/DELETE /faults; empty: fault control is off.
    "LAB_ADMIN_TOKEN": "",
    # The faults file every worker of one instance reads (app/faults.py); empty:
    # one of this process's own (gunicorn.conf.py sets one for its workers).
    "LAB_FAULTS_FILE": "",
}


class ConfigError(ValueError):
    """A variable holds a value the lab cannot use; the message names it."""


def _convert(name: str, raw: object, default: object) -> object:
    kind = type(default)
    if kind is str:
        return str(raw)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={raw!r}: expected {kind.__name__}") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r}: must not be negative")
    return value


def from_env(environ: Mapping[str, str] | None = None) -> dict:
    """Return every setting: the environment's value where set, else the default."""
    environ = os.environ if environ is None else environ
    settings = {
        name: _convert(name, environ[name], default) if environ.get(name, "") != "" else default
        for name, default in DEFAULTS.items()
    }
    return validate(settings)


def validate(settings: dict) -> dict:
    """Check the settings that depend on each other or on a fixed choice."""
    if settings["LAB_METRICS"] not in METRICS_MODES:
        raise ConfigError(
            f"LAB_METRICS={settings['LAB_METRICS']!r}: expected one of {', '.join(METRICS_MODES)}"
        )
    if settings["DB_DELAY_MIN_SECONDS"] > settings["DB_DELAY_MAX_SECONDS"]:
        raise ConfigError(
            f"DB_DELAY_MIN_SECONDS={settings['DB_DELAY_MIN_SECONDS']} is above "
            f"DB_DELAY_MAX_SECONDS={settings['DB_DELAY_MAX_SECONDS']}"
        )
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "STATSD_GAUGE_INTERVAL"):
        if settings[name] <= 0:
            raise ConfigError(f"{name}={settings[name]}: must be above 0")
    return settings
