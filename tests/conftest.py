"""Fixtures shared by the unit tests: an app built by the factory, its client,
and a UDP socket standing in for the StatsD daemon."""

import os
import tempfile

# prometheus_client reads this when first imported, which is below (through the
# app): the tests see the multiprocess mode the app runs in under gunicorn.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lab-tests-multiproc-")

import pytest  # noqa: E402

from app import create_app  # noqa: E402
from app.config import DEFAULTS  # noqa: E402

from .helpers import OtlpListener, UdpListener  # noqa: E402


@pytest.fixture(scope="session")
def otlp_receiver():
    """Where every app a test builds exports OTLP, unless the test says otherwise."""
    with OtlpListener() as listener:
        yield listener


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, otlp_receiver):
    """Keep a developer's exported lab settings out of every test; OTLP goes to this machine."""
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    # The default endpoint names the compose network's Prometheus: no export leaves 127.0.0.1.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", otlp_receiver.endpoint)


@pytest.fixture
def otlp_server():
    """A receiver of this test's own, as statsd_server is for StatsD."""
    with OtlpListener() as listener:
        yield listener


@pytest.fixture
def statsd_server():
    with UdpListener() as listener:
        yield listener


@pytest.fixture
def make_app():
    """Build apps with create_app and release their StatsD sockets afterwards."""
    built = []

    def make(test_config=None):
        built.append(create_app(test_config))
        return built[-1]

    yield make
    for app in built:
        app.extensions["lab.metrics"].close()


@pytest.fixture
def app(make_app, statsd_server):
    return make_app(
        {
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": statsd_server.port,
            "DB_DELAY_MIN_SECONDS": 0.0,
            "DB_DELAY_MAX_SECONDS": 0.005,
            "TESTING": True,
        }
    )


@pytest.fixture
def client(app):
    return app.test_client()
