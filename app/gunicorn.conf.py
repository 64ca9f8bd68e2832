"""gunicorn settings and the multiprocess hooks prometheus_client needs.

Run as `gunicorn --config app/gunicorn.conf.py` (the image, `make run`, the
native stack). Everything comes from the environment through app.config.
"""

import glob
import os
import tempfile

# Module-level names are read as gunicorn settings (`config` is one): keep
# helpers private. Neither imports prometheus_client (see below).
from app import processes as _processes
from app.config import from_env as _from_env

_settings = _from_env()

wsgi_app = "app:create_app()"
bind = f"{_settings['APP_HOST']}:{_settings['APP_PORT']}"
workers = _settings["GUNICORN_WORKERS"]
threads = _settings["GUNICORN_THREADS"]
# gunicorn's own sync/gthread workers, also counting the malformed and oversized
# requests gunicorn answers before the app sees them (app/gunicorn_workers.py).
worker_class = "app.gunicorn_workers.SyncWorker" if threads == 1 else "app.gunicorn_workers.ThreadWorker"
max_requests = _settings["GUNICORN_MAX_REQUESTS"]  # 0: never recycle
accesslog = None
errorlog = "-"
# gunicorn >= 26 opens a control socket at one fixed path per user: several
# instances (tests, a read-only container root) would fight over it.
control_socket_disable = True

# prometheus_client picks its multiprocess mode when it is first imported, and
# nothing in this master has imported it yet (app.config does not), so a default
# set here still reaches every worker. The image and the runners set it anyway.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-multiproc-")
# The workers of this instance share their faults (app/faults.py) through one
# file, kept beside the metric files (the collector reads only *.db).
if not os.environ.get("LAB_FAULTS_FILE"):
    os.environ["LAB_FAULTS_FILE"] = os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "faults.json")


def on_starting(server):
    """Start from an empty multiprocess directory: old workers' files would be summed in."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    # The files, not the directory: in the container it is a tmpfs mount point.
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    server.log.info("prometheus multiprocess directory %s wiped", path)
    # The last run's workers are gone; this master is the one now (app/processes.py).
    _processes.forget_all(path)
    _processes.claim_master(path, os.getpid())
    # Faults belong to a run too: a restart is the way back to a healthy app.
    if os.path.exists(os.environ["LAB_FAULTS_FILE"]):
        os.remove(os.environ["LAB_FAULTS_FILE"])
        server.log.info("faults cleared")


def pre_fork(server, worker):
    """Give the worker about to be forked the lowest slot no live worker holds: a recycled worker's
    replacement takes its slot, so process series are named 0 .. workers-1, never by pid."""
    worker.lab_slot = _processes.free_slot(getattr(w, "lab_slot", None) for w in server.WORKERS.values())


def post_worker_init(worker):
    _processes.claim(os.environ["PROMETHEUS_MULTIPROC_DIR"], worker.lab_slot, os.getpid())
    _metrics(worker).worker_started(threads=worker.cfg.threads, slot=worker.lab_slot)


def worker_exit(server, worker):
    # Also called in the master for a worker that is already gone: no app there.
    if hasattr(worker, "wsgi"):
        _metrics(worker).worker_stopping()


def _metrics(worker):
    return worker.wsgi.extensions["lab.metrics"]


def child_exit(server, worker):
    """Fold the dead worker's counts into the archive; drop its live gauges; free its slot."""
    from app import multiproc

    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    multiproc.archive_dead_process(worker.pid, path)
    _processes.release(path, worker.lab_slot, worker.pid)
