"""Peer of the lab's pull: prometheus_flask_exporter's `GunicornPrometheusMetrics`.

Set up as that library's README says for gunicorn: the app wrapped with its
default metrics (a request histogram and a counter, labelled by raw path), a
metrics server started by the master in `when_ready`, and
`mark_process_dead_on_child_exit` in `child_exit`. That last hook removes a
dead worker's live gauges only: its counter and histogram files stay, which
is what the bench's scrape-after-recycles rows measure.

    PEER_METRICS_PORT=9200 LAB_METRICS=off gunicorn --config python:lab.peers.flask_exporter
"""

import os

from lab.peers import lab_gunicorn_settings

# First the lab's settings: they give prometheus_client its multiprocess directory
# before anything below imports it.
globals().update(lab_gunicorn_settings())
wsgi_app = "lab.peers.flask_exporter:create_app()"

from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics  # noqa: E402

METRICS_PORT = int(os.environ.get("PEER_METRICS_PORT", "9200"))


def when_ready(server):
    GunicornPrometheusMetrics.start_http_server_when_ready(METRICS_PORT, host="127.0.0.1")


def child_exit(server, worker):
    GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


def create_app():
    from app import create_app as create_lab_app

    app = create_lab_app()  # with LAB_METRICS=off: none of the lab's instrumentation
    GunicornPrometheusMetrics(app)
    return app
