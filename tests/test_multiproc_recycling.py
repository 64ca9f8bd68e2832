"""Recycled and killed workers: counters never go backwards, nothing is lost or
counted twice, live gauges forget the dead, and the directory stays bounded."""

import os
import signal
import threading

import pytest
import requests

from .helpers import gunicorn, value, wait_for_workers, wait_until

pytestmark = pytest.mark.processes  # every test here starts processes

FAST = {"DB_DELAY_MIN_SECONDS": "0", "DB_DELAY_MAX_SECONDS": "0.005", "STATSD_HOST": "127.0.0.1"}
INDEX_200 = {"method": "GET", "route": "/", "status": "200"}


def db_files(server) -> list[str]:
    return sorted(path.name for path in server.multiproc.glob("*.db"))


def test_recycled_workers_keep_every_count_and_the_directory_bounded():
    with gunicorn(GUNICORN_WORKERS="2", GUNICORN_MAX_REQUESTS="10", **FAST) as server:
        totals, sent, done = [], 0, threading.Event()

        def scrape_while_recycling():
            # Scrapes race with the master folding dead workers in: none may fail,
            # and none may see a total lower than the one before.
            while not done.is_set():
                totals.append(value(server.scrape(), "http_requests_total", **INDEX_200))

        scraper = threading.Thread(target=scrape_while_recycling)
        scraper.start()
        try:
            for _ in range(300):
                assert requests.get(server.url + "/", timeout=10).status_code == 200
                sent += 1
        finally:
            done.set()
            scraper.join()
        # dozens of workers have come and gone (every 10 requests, scrapes included);
        # a recycled worker's successor may still be booting: capacity counts live ones
        wait_for_workers(server, 2)
        scraped = server.scrape()
        assert value(scraped, "http_requests_total", **INDEX_200) == sent == 300
        assert len(totals) > 10
        assert totals == sorted(totals), f"a counter went backwards: {totals}"
        assert value(scraped, "http_request_duration_seconds_count", method="GET", route="/") == 300
        assert value(scraped, "http_requests_in_flight") == 0
        # two live workers' files (counter, histogram, 1 gauge) plus one archive per type
        files = db_files(server)
        assert {"counter_archive.db", "histogram_archive.db"} <= set(files)
        assert len(files) <= 2 + 2 * 3, files


def test_killed_workers_lose_nothing_and_leave_no_live_gauge_behind():
    with gunicorn(GUNICORN_WORKERS="3", **FAST) as server:
        sent = 0
        for _ in range(5):
            for _ in range(20):
                assert requests.get(server.url + "/", timeout=10).status_code == 200
                sent += 1
            killed = server.workers()
            for pid in killed:
                os.kill(pid, signal.SIGKILL)  # no worker_exit, no goodbye
            wait_for_workers(server, 3, gone=killed)
        scraped = server.scrape()
        assert value(scraped, "http_requests_total", **INDEX_200) == sent == 100
        assert value(scraped, "http_requests_capacity") == 3  # the 15 dead ones are gone
        assert len(db_files(server)) <= 2 + 3 * 3


def test_a_worker_killed_mid_request_takes_its_in_flight_with_it():
    slow = {**FAST, "DB_DELAY_MIN_SECONDS": "5", "DB_DELAY_MAX_SECONDS": "5"}
    with gunicorn(GUNICORN_WORKERS="2", **slow) as server:
        stuck = threading.Thread(target=lambda: _ignore_errors(server.url + "/database/"))
        stuck.start()
        wait_until(
            lambda: value(server.scrape(), "http_requests_in_flight"), 1, 5, "the slow request in flight"
        )
        killed = server.workers()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        stuck.join()
        wait_for_workers(server, 2, gone=killed)
        scraped = server.scrape()
        assert value(scraped, "http_requests_in_flight") == 0
        assert value(scraped, "http_requests_capacity") == 2


def _ignore_errors(url):
    try:
        requests.get(url, timeout=30)
    except requests.ConnectionError:
        pass  # its worker was killed: that is the point
