"""Steady mixed traffic for the lab's app, so every dashboard panel has data.

The `loadgen` compose service (and `make native`) runs this with Locust, web UI
on 127.0.0.1:8089, with the options of loadgen/locust.conf: each simulated user
sends one request per second, so the number of users *is* the request rate.
Change it while the test runs with "Edit" in the web UI, or in locust.conf
before the load generator starts.

The mix, in percent of requests (the task weights add up to 100):

    /             90   traffic and latency of the fast path (the `/` latency SLO)
    /database/     5   the slow route (1-3 s): the symptom, db_query_duration the cause,
                       and the saturation panel (each one holds a worker that long)
    unmatched      4   404s on paths no rule matches: 4xx errors, route="unmatched"
    /error/        1   500s: the 5xx panels and the availability SLO

With 1 % of 5xx the availability SLO (99.5 %) burns its budget at 2x: visible,
yet under the 3x of the slowest burn-rate alert, so the baseline pages no one
and an injected fault stands out. At the default 5 users /database/ keeps about
half a worker of the app's 4 busy, so `/` rarely waits behind it.
"""

import itertools
import os
import random

from locust import HttpUser, constant_throughput, task

# Several instances of the app (`make native-ha` sets it: app-1 and app-2): each user sends to one,
# the users taking them in turn, so the load splits evenly; empty: every user sends to --host.
HOSTS = [host.strip() for host in os.environ.get("LOADGEN_HOSTS", "").split(",") if host.strip()]
TURNS = itertools.count()


class LabVisitor(HttpUser):
    # One task (one request) per second per user, however long the answer took:
    # users = requests per second, which is what a person changing the rate means.
    # A task slower than 1 s (a /database/ sleeping 2 s) is not caught up, so the
    # rate is a little under the user count while /database/ is slow.
    wait_time = constant_throughput(1)

    def on_start(self):
        if HOSTS:
            self.client.base_url = HOSTS[next(TURNS) % len(HOSTS)]

    @task(90)
    def index(self):
        self._get("/", expect=200)

    @task(5)
    def database(self):
        self._get("/database/", expect=200)

    @task(4)
    def unmatched(self):
        # A new raw path each time, like a crawler probing: the app still keeps one
        # series for them all (route="unmatched"), and so do Locust's stats here.
        self._get(f"/no-such-page/{random.randrange(1000)}", expect=404, name="unmatched")

    @task(1)
    def error(self):
        self._get("/error/", expect=500)

    def _get(self, path: str, expect: int, name: str | None = None) -> None:
        """GET `path`, named by its route; the expected status is a success, even a 404 or 500."""
        # Without catch_response Locust counts every 4xx/5xx as a failure of the
        # load generator; here those answers are the traffic we mean to send,
        # and a failure means the app answered something other than intended.
        with self.client.get(path, name=name or path, catch_response=True) as response:
            if response.status_code == expect:
                response.success()
            else:
                response.failure(f"expected {expect}, got {response.status_code}")
