"""prometheus_client with its default registry under gunicorn: the setup of a first tutorial.

No PROMETHEUS_MULTIPROC_DIR and none of the lab's hooks: each worker counts in
its own memory and `/metrics` answers with the counts of whichever worker
accepted the scrape (app/pull.py serves the default registry when no
multiprocess directory is set).

    GUNICORN_WORKERS=4 gunicorn --config python:lab.scenarios.naive.default_registry
"""

from app.config import from_env as _from_env

_settings = _from_env()

wsgi_app = "app:create_app()"
bind = f"{_settings['APP_HOST']}:{_settings['APP_PORT']}"
workers = _settings["GUNICORN_WORKERS"]
# gunicorn >= 26 opens a control socket at one fixed path per user: two servers would fight over it.
control_socket_disable = True
