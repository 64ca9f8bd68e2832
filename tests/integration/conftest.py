"""The `stack` fixture: one live stack per test session.

LAB_STACK=native (default) runs `python -m lab native` on free ports with short
flush and scrape intervals; LAB_STACK=compose runs docker-compose.yml through
testcontainers, and is skipped when no Docker engine answers.
"""

import os

import pytest

from . import stack as stacks


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py's, which orders the groups by these marks
def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.processes)  # the stack: `make check` leaves them out


@pytest.fixture(scope="session")
def stack():
    kind = os.environ.get("LAB_STACK", "native")
    if kind == "native":
        yield from stacks.native_stack()
    elif kind == "compose":
        if not stacks.docker_engine_reachable():
            pytest.skip("LAB_STACK=compose: no Docker engine answers `docker info`")
        missing = stacks.compose_secrets_missing()
        if missing:
            pytest.skip(f"LAB_STACK=compose: set {', '.join(missing)} in .env (`make up` writes them)")
        yield from stacks.compose_stack()
    else:
        raise pytest.UsageError(f"LAB_STACK={kind!r}: expected native or compose")
