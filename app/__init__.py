"""The instrumented Flask service of the lab.

`create_app()` is the factory gunicorn calls (`app:create_app()`): defaults,
then the environment (app/config.py), then a test's overrides.
"""

import logging

from flask import Flask

from . import config

__all__ = ["create_app"]


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: routes, and the metrics LAB_METRICS switches on."""
    # Imported here, not at the top: prometheus_client must not be imported by
    # gunicorn's master (it reads app.config) before the multiprocess
    # directory is in place, nor by `python -m app.blog_worker`.
    from . import faults, views
    from .instrumentation import Metrics

    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(config.from_env())
    if test_config is not None:
        app.config.from_mapping(test_config)
        config.validate(app.config)
    logging.basicConfig(level=logging.INFO)
    views.init_app(app)
    faults.init_app(app)
    Metrics.from_config(app.config).init_app(app)
    return app
