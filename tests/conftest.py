"""Fixtures shared by the unit tests: an app built by the factory, its client,
and a UDP socket standing in for the StatsD daemon."""

import os
import tempfile

# prometheus_client reads this when first imported, which is below (through the
# app): the tests see the multiprocess mode the app runs in under gunicorn.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lab-tests-multiproc-")

import subprocess  # noqa: E402

# matplotlib (`lab report`'s charts) lists the machine's fonts with `fc-list` the first time it is
# imported on a machine, and caches them: done here, before any test, so that the first unmarked
# test to draw a chart is not failed for starting a process that is matplotlib's.
import matplotlib.font_manager  # noqa: E402, F401
import pytest  # noqa: E402

from app import create_app  # noqa: E402
from app.config import DEFAULTS  # noqa: E402
from lab.stack.otlp_sink import OtlpSink  # noqa: E402

from .helpers import UdpListener  # noqa: E402

OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
# LAB_LIST_PROCESSES=FILE: note the tests that start a process in FILE instead of failing them.
LIST_PROCESSES = os.environ.get("LAB_LIST_PROCESSES")


class UnmarkedProcess(RuntimeError):
    """A test that starts a process without saying so."""


def starts_processes(item) -> bool:
    return any(item.iter_markers("processes")) or any(item.iter_markers("integration"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test that starts a process (gunicorn, a backend, promtool...) must be marked `processes`, so that
    `make check` (`-m "not processes"`) stays fast; an unmarked one that does fails, naming the command.
    Module fixtures start with the module's first test, so they are held to it too."""
    if starts_processes(item):
        yield
        return
    original = subprocess.Popen.__init__

    def refuse(self, args, *rest, **options):
        if LIST_PROCESSES:
            with open(LIST_PROCESSES, "a") as listing:
                listing.write(item.nodeid + "\n")
            return original(self, args, *rest, **options)
        raise UnmarkedProcess(f"{item.nodeid} starts {args!r}: mark it @pytest.mark.processes")

    subprocess.Popen.__init__ = refuse
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original


SESSION_STACK = "the session's live stack"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the marks into the node ids
def pytest_collection_modifyitems(items):
    """`make test` runs on two pytest-xdist workers (`--dist loadgroup`), in groups: each file on one
    worker, so that its module fixtures (a gunicorn, a Prometheus, the HA stack) start once and its
    tests run in order, and every test of the session's live stack (tests/integration's `stack`
    fixture, where a module does not define its own) on the same worker, so that one stack starts.

    The groups go out in the order of `items` (the Makefile's --no-loadscope-reorder; xdist would send
    those with the most tests first): those that start a live stack first, then those that start a
    process, the unit tests last, filling in on whichever worker is done first."""
    weight: dict[str, int] = {}
    for item in items:
        shares_the_stack = "stack" in item.fixturenames and not hasattr(item.module, "stack")
        group = SESSION_STACK if shares_the_stack else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
        heavy = 0 if any(item.iter_markers("integration")) else 1 if starts_processes(item) else 2
        weight[group] = min(weight.get(group, 2), heavy)
        item.stash[GROUP] = group
    items.sort(key=lambda item: weight[item.stash[GROUP]])  # stable: each file's tests stay in order


GROUP = pytest.StashKey[str]()


LOST_GROUPS = pytest.StashKey[str]()


def pytest_collection_finish(session):
    """On an xdist worker under `--dist loadgroup`, every node id must carry its group (`id@group`):
    without it xdist deals the tests out one by one, silently, and each worker starts every stack and
    module fixture again (pytest 9.2 with xdist 3.8, pytest-xdist#1386). Then every test fails, saying so."""
    config = session.config
    # xdist tells its workers `--dist loadgroup` by this option (their own `dist` is "no")
    if not hasattr(config, "workerinput") or not getattr(config.option, "loadgroup", False):
        return
    ungrouped = [item.nodeid for item in session.items if "@" not in item.nodeid]
    if ungrouped:
        config.stash[LOST_GROUPS] = (
            f"pytest-xdist lost the test groups ({ungrouped[0]} has none): "
            "every worker would start every stack; see pytest's pin in pyproject.toml"
        )


def pytest_runtest_setup(item):
    if LOST_GROUPS in item.config.stash:
        pytest.fail(item.config.stash[LOST_GROUPS], pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def otlp_receiver():
    """Where every app a test builds exports OTLP, unless the test says otherwise.

    The default endpoint names the compose network's Prometheus: no export may leave
    127.0.0.1. Set for the session, before any module's gunicorn starts.
    """
    with OtlpSink() as listener, pytest.MonkeyPatch.context() as session:
        session.setenv(OTLP_ENDPOINT, listener.url)
        yield listener


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, otlp_receiver):
    """Keep a developer's exported lab settings out of every test; OTLP stays on this machine."""
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(OTLP_ENDPOINT, otlp_receiver.url)


@pytest.fixture
def otlp_server():
    """A receiver of this test's own, as statsd_server is for StatsD."""
    with OtlpSink() as listener:
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
