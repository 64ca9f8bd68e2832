"""The instrumentation a user would pick instead of the lab's, for `make bench` to load head to head.

Each peer is one module that is both a gunicorn config (`--config
python:lab.peers.<name>`: the lab's own settings and hooks, from
app/gunicorn.conf.py, with the peer's documented hooks on top) and the app
it serves: the lab's app with LAB_METRICS=off (no lab instrumentation at
all) plus the peer's, set up the way its documentation or the usual
tutorial does. Same routes, same workers, same bind: only the metrics differ.
"""

import runpy
from types import ModuleType
from typing import NamedTuple

from ..settings import ROOT

__all__ = ["PEERS", "Peer", "global_meter_provider", "lab_gunicorn_settings"]


class Peer(NamedTuple):
    """What the bench needs to know of a peer module (importing one runs gunicorn's config)."""

    replaces: str  # the LAB_METRICS pipeline it stands in for
    scraped_metric: str | None = (
        None  # a pull peer: a metric its own metrics server (PEER_METRICS_PORT) serves
    )


PEERS = {
    "flask_exporter": Peer("prometheus", scraped_metric="flask_http_request_total"),
    "statsd_hooks": Peer("statsd"),
    "otel_flask": Peer("otel"),
}


def lab_gunicorn_settings() -> dict:
    """app/gunicorn.conf.py's settings and hooks (its module-level names, less its imports and helpers)."""
    names = runpy.run_path(str(ROOT / "app" / "gunicorn.conf.py"))
    return {
        name: value
        for name, value in names.items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }


def global_meter_provider():
    """The lab's MeterProvider (app/otel.py) from the app's settings, installed as the global one that
    OpenTelemetry's instrumentations record through; the SDK's atexit hook shuts it down (its last
    export). Where it is made decides whose process it is: a worker's (post_fork), or the master's."""
    from opentelemetry import metrics

    from app.config import from_env, otlp_endpoints
    from app.otel import meter_provider

    settings = from_env()
    provider = meter_provider(
        otlp_endpoints(settings),
        settings["OTEL_METRIC_EXPORT_INTERVAL"],
        settings["OTEL_SERVICE_NAME"],
        shutdown_on_exit=True,
    )
    metrics.set_meter_provider(provider)
    return provider
