"""The in-flight gauge as most tutorials push it: each worker sends its own count, absolute.

The app with LAB_METRICS=off (none of the lab's instrumentation) plus Flask
hooks that send `in_flight:<this worker's count>|g` when a request starts and
when it ends, under the same StatsD name as the lab's gauge. StatsD keeps the
last value it received for a name, so the gauge is whichever worker spoke
last, not the sum (the lab sends deltas, app/push.py).

    LAB_METRICS=off STATSD_HOST=127.0.0.1 gunicorn --config python:lab.scenarios.naive.absolute_gauge
"""

import threading

from flask import g
from statsd import StatsClient

from app.signals import STATSD_IN_FLIGHT
from lab.peers import lab_gunicorn_settings

globals().update(lab_gunicorn_settings())
wsgi_app = "lab.scenarios.naive.absolute_gauge:create_app()"


def create_app():
    from app import create_app as create_lab_app

    app = create_lab_app()  # with LAB_METRICS=off: none of the lab's instrumentation
    statsd = StatsClient(app.config["STATSD_HOST"], app.config["STATSD_PORT"], app.config["STATSD_PREFIX"])
    lock = threading.Lock()
    in_flight = 0  # this worker's requests being answered

    def count(change: int) -> None:
        nonlocal in_flight
        with lock:
            in_flight += change
            value = in_flight
        statsd.gauge(STATSD_IN_FLIGHT, value)

    @app.before_request
    def started():
        g.counted = True
        count(+1)

    @app.teardown_request
    def finished(error=None):
        if g.pop("counted", False):  # not when an earlier before_request hook answered (a fault)
            count(-1)

    return app
