"""The post's `__main__` example: a process that is not a web app, exposing its
metrics with `start_http_server` for Prometheus to scrape.

    python -m app.blog_worker        # serves on WORKER_HOST:WORKER_PORT (8000)
"""

import os

# This process keeps its metrics in memory: it must not join the app's gunicorn
# workers in a multiprocess directory that the image or a runner exported.
# (Before prometheus_client is imported: that is when it reads the variable.)
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

import random  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from prometheus_client import Summary, start_http_server  # noqa: E402

from . import config  # noqa: E402
from .signals import BLOG_WORKER_PROCESSING  # noqa: E402

# Create a metric to track time spent and requests made.
REQUEST_TIME = Summary(BLOG_WORKER_PROCESSING.name, BLOG_WORKER_PROCESSING.help)


# Decorate function with metric.
@REQUEST_TIME.time()
def process_request(t):
    """A dummy function that takes some time."""
    time.sleep(t)


def main() -> None:
    settings = config.from_env()
    # As PID 1 in a container, SIGTERM is ignored unless handled: exit at once.
    signal.signal(signal.SIGTERM, _exit)
    start_http_server(settings["WORKER_PORT"], addr=settings["WORKER_HOST"])
    print(f"worker metrics on http://{settings['WORKER_HOST']}:{settings['WORKER_PORT']}/metrics", flush=True)
    while True:
        process_request(random.random())


def _exit(signum, frame):
    raise SystemExit(0)


if __name__ == "__main__":
    main()
