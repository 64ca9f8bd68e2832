"""prometheus_client's documented multiprocess recipe, and nothing more: dead workers' files stay.

Its `child_exit` calls `multiprocess.mark_process_dead`, which removes a dead
worker's live gauges only (client_python #566): every counter and histogram
file of every worker that ever ran stays, and every scrape reads them all.

    GUNICORN_MAX_REQUESTS=5 gunicorn --config python:lab.scenarios.naive.keep_files
"""

import os

from lab.peers import lab_gunicorn_settings

globals().update(lab_gunicorn_settings())


def child_exit(server, worker):
    # Imported here, as in app/gunicorn.conf.py: not by the master before it needs it.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])
