"""The usual "fix" for a multiprocess directory that grows: delete a dead worker's files.

What client_python PR #411 proposed and issue #566 asks for: `child_exit`
removes every `*_<pid>.db` of the dead worker. The directory stays small, and
the dead worker's counts leave the totals with it: counters go backwards.

    GUNICORN_MAX_REQUESTS=5 gunicorn --config python:lab.scenarios.naive.delete_files
"""

import glob
import os

from lab.peers import lab_gunicorn_settings

globals().update(lab_gunicorn_settings())


def child_exit(server, worker):
    from prometheus_client import multiprocess

    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    multiprocess.mark_process_dead(worker.pid, path)
    for dead in glob.glob(os.path.join(path, f"*_{worker.pid}.db")):
        os.remove(dead)
