"""The one way the lab runs its app under gunicorn on a free port: for the bench, the scenarios and the tests.

The config is the lab's (app/gunicorn.conf.py), a peer's (lab/peers) or a naive
setup's (lab/scenarios/naive); each server gets a multiprocess directory of its
own (or none, for a default-registry setup), removed when it stops, and dies
with the process that started it (processes.py `die_with_parent`).

    with Gunicorn(env={"GUNICORN_WORKERS": 2}) as server:
        server.wait_ready()
        requests.get(server.url + "/")
"""

import os
import sys
import tempfile
from pathlib import Path

from app.config import DEFAULTS as APP_DEFAULTS

from ..settings import LOOPBACK, ROOT, free_port
from .processes import Process, die_with_parent, http_ok, pinned

LAB_CONFIG = "app/gunicorn.conf.py"
START_TIMEOUT = 60.0  # four workers booting on a busy 2-CPU machine
STOP_TIMEOUT = 30.0


class Gunicorn:
    """gunicorn serving `config` on 127.0.0.1 and a free port, started at once (`wait_ready` waits).

    `env`: the app's variables for this server, over the environment's; with
    `inherit_app_settings=False` the developer's own exported app settings
    (app/config.py) are left out, so only `env` and the defaults apply.
    `multiprocess=False` runs it without PROMETHEUS_MULTIPROC_DIR.
    `peer_metrics`: the config serves /metrics from gunicorn's master on a port
    of its own (PEER_METRICS_PORT, as lab/peers/flask_exporter.py does).
    `cpu`: pin the server (master and workers) to that CPU with taskset.
    """

    def __init__(
        self,
        config: str = LAB_CONFIG,
        *,
        env: dict | None = None,
        name: str | None = None,
        log: Path | None = None,
        multiprocess: bool = True,
        inherit_app_settings: bool = True,
        peer_metrics: bool = False,
        cpu: int | None = None,
        tmp_dir: str | None = None,
    ):
        self.config = config
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.metrics_url = self.url + "/metrics"
        self._dir = tempfile.TemporaryDirectory(prefix="lab-gunicorn-multiproc-", dir=tmp_dir)
        self.multiproc = Path(self._dir.name) if multiprocess else None
        environment = {
            name: value
            for name, value in os.environ.items()
            if name != "PROMETHEUS_MULTIPROC_DIR" and (inherit_app_settings or name not in APP_DEFAULTS)
        }
        environment.update(APP_HOST=LOOPBACK, APP_PORT=str(self.port))
        if self.multiproc is not None:
            environment["PROMETHEUS_MULTIPROC_DIR"] = str(self.multiproc)
        if peer_metrics:
            environment["PEER_METRICS_PORT"] = str(free_port())
            self.metrics_url = f"http://{LOOPBACK}:{environment['PEER_METRICS_PORT']}/metrics"
        environment.update({key: str(value) for key, value in (env or {}).items()})
        argv = [sys.executable, "-m", "gunicorn", "--config", config]
        self.process = Process(
            pinned(argv, cpu),
            name=name or f"gunicorn ({config})",
            log=log,
            cwd=ROOT,
            env=environment,
            preexec_fn=die_with_parent,  # a run stopped with Ctrl-C or killed leaves no server behind
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> "Gunicorn":
        """Return once /healthz answers 200; raise NotReady if gunicorn exits or `timeout` passes."""
        self.process.wait_ready(http_ok(self.url + "/healthz"), timeout)
        return self

    def workers(self) -> set[int]:
        """The pids of the live workers (the master's children)."""
        return set(self.process.children())

    def db_files(self) -> list[str]:
        """The multiprocess files a scrape reads, by name."""
        return sorted(path.name for path in self.multiproc.glob("*.db")) if self.multiproc else []

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Stop it (SIGTERM, then SIGKILL after `timeout` s), remove its directory; its exit status."""
        status = self.process.stop(timeout)
        self._dir.cleanup()
        return status

    def __enter__(self) -> "Gunicorn":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
