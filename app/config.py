"""The app's configuration, read from the environment in one place.

Every setting's default is written here and nowhere else: compose passes
`${VAR:-}` (empty means "the default below"), and a test checks `.env.example`
against these values. Compose reads `.env`; the native runner, `make run` and
the `lab` commands read the same file with python-dotenv.
"""

import os
from collections.abc import Mapping

from . import signals

# LAB_METRICS: a comma-separated list of these pipelines (`prometheus,otel`), or `all`, or `off`.
PIPELINES = ("prometheus", "statsd", "otel")

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
    # OpenTelemetry's own variables, read here for the lab's defaults (the SDK reads the
    # rest of its OTEL_* variables itself: timeouts, headers, OTEL_RESOURCE_ATTRIBUTES).
    # The endpoint is the receiver on the compose network, as STATSD_HOST is.
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://prometheus:9090/api/v1/otlp/v1/metrics",
    # More receivers, comma-separated, each with a reader and an exporter of its own beside the one
    # above (the lab's, not OpenTelemetry's: its variable names one endpoint). The HA topology sends
    # to both Prometheus replicas (docs/beyond-one-machine.md); empty: the one endpoint above.
    "OTLP_EXTRA_METRICS_ENDPOINTS": "",
    "OTEL_METRIC_EXPORT_INTERVAL": 5000,  # ms; the SDK's own default is 60 s
    "OTEL_SERVICE_NAME": "app",  # becomes the `job` label, as the scrape job's name
    # e.g. deployment.environment=lab: read by the SDK itself; listed so compose passes it on.
    "OTEL_RESOURCE_ATTRIBUTES": "",
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


def pipelines(lab_metrics: str) -> frozenset[str]:
    """The pipelines a LAB_METRICS value switches on (`all`: every one; `off`: none)."""
    names = [name.strip() for name in lab_metrics.split(",")]
    if names == ["all"]:
        return frozenset(PIPELINES)
    if names == ["off"]:
        return frozenset()
    wrong = [name for name in names if name not in PIPELINES]
    if wrong or len(set(names)) != len(names):
        raise ConfigError(
            f"LAB_METRICS={lab_metrics!r}: expected all, off, or a comma-separated list of "
            f"{', '.join(PIPELINES)} (each once)"
        )
    return frozenset(names)


def otlp_endpoints(settings: Mapping) -> list[str]:
    """Every OTLP/HTTP metrics endpoint the app exports to: OpenTelemetry's, then the lab's extra ones."""
    extra = settings["OTLP_EXTRA_METRICS_ENDPOINTS"]
    named = [("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", settings["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"])]
    if extra.strip():
        named += [("OTLP_EXTRA_METRICS_ENDPOINTS", endpoint.strip()) for endpoint in extra.split(",")]
    for name, endpoint in named:
        scheme, _, rest = endpoint.partition("://")
        if scheme not in ("http", "https") or not rest.strip("/"):
            raise ConfigError(f"{name}: {endpoint!r} is not an http:// or https:// URL")
    endpoints = [endpoint for _, endpoint in named]
    if len(set(endpoints)) != len(endpoints):
        raise ConfigError(
            f"OTLP_EXTRA_METRICS_ENDPOINTS={extra!r}: names an endpoint twice (every point twice)"
        )
    return endpoints


def validate(settings: dict) -> dict:
    """Check the settings that depend on each other or on a fixed choice."""
    pipelines(settings["LAB_METRICS"])
    otlp_endpoints(settings)
    if settings["DB_DELAY_MIN_SECONDS"] > settings["DB_DELAY_MAX_SECONDS"]:
        raise ConfigError(
            f"DB_DELAY_MIN_SECONDS={settings['DB_DELAY_MIN_SECONDS']} is above "
            f"DB_DELAY_MAX_SECONDS={settings['DB_DELAY_MAX_SECONDS']}"
        )
    for name in (
        "GUNICORN_WORKERS",
        "GUNICORN_THREADS",
        "STATSD_GAUGE_INTERVAL",
        "OTEL_METRIC_EXPORT_INTERVAL",
    ):
        if settings[name] <= 0:
            raise ConfigError(f"{name}={settings[name]}: must be above 0")
    return settings
