"""Peer of the lab's push: StatsD the way most tutorials send it, with pystatsd.

Flask's `before_request` notes the time; `after_request` sends a counter and
a timer, each in a datagram of its own (the lab sends one pipeline datagram
per request). The names carry the same information as the lab's: route
endpoint, method and status for the count, endpoint for the time.

    LAB_METRICS=off STATSD_HOST=127.0.0.1 gunicorn --config python:lab.peers.statsd_hooks
"""

import time

from flask import g, request
from statsd import StatsClient

from lab.peers import lab_gunicorn_settings

globals().update(lab_gunicorn_settings())
wsgi_app = "lab.peers.statsd_hooks:create_app()"


def create_app():
    from app import create_app as create_lab_app

    app = create_lab_app()  # with LAB_METRICS=off: none of the lab's instrumentation
    statsd = StatsClient(app.config["STATSD_HOST"], app.config["STATSD_PORT"], app.config["STATSD_PREFIX"])

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def send_stats(response):
        endpoint = request.endpoint or "unmatched"
        statsd.incr(f"requests.{endpoint}.{request.method}.{response.status_code}")
        if "started" in g:  # not when an earlier before_request hook answered (an injected fault)
            statsd.timing(f"latency.{endpoint}", (time.perf_counter() - g.started) * 1000)
        return response

    return app
