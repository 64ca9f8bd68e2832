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

from ..settings import ROOT

__all__ = ["lab_gunicorn_settings"]


def lab_gunicorn_settings() -> dict:
    """app/gunicorn.conf.py's settings and hooks (its module-level names, less its imports and helpers)."""
    names = runpy.run_path(str(ROOT / "app" / "gunicorn.conf.py"))
    return {
        name: value
        for name, value in names.items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
