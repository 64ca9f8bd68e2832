"""The blog post's routes, plus a health check and a route that fails on purpose."""

import random
import time

from flask import Flask, Response, current_app


def index():
    current_app.extensions["lab.metrics"].blog_request("/")
    return "Development Prometheus-backed Flash App"  # sic: the post's text


def database():
    """Simulate an expensive database query (the post's: 1-3 s)."""
    config = current_app.config
    metrics = current_app.extensions["lab.metrics"]
    started = time.perf_counter()
    time.sleep(random.uniform(config["DB_DELAY_MIN_SECONDS"], config["DB_DELAY_MAX_SECONDS"]))
    seconds = time.perf_counter() - started
    metrics.db_query("select", seconds)
    metrics.blog_slow("/database/", seconds)
    return "Completed expensive database operation"


def error():
    """Fail like a bug would: the exception becomes a 500 that both pipelines count."""
    raise RuntimeError("simulated failure (GET /error/ always fails)")


def metrics():
    body, content_type = current_app.extensions["lab.metrics"].exposition()
    return Response(body, content_type=content_type)


def healthz():
    return {"status": "ok"}


def init_app(app: Flask) -> None:
    app.add_url_rule("/", view_func=index)
    app.add_url_rule("/database/", view_func=database)
    app.add_url_rule("/error/", view_func=error)
    # The post serves /metrics/; Prometheus asks for /metrics by default.
    app.add_url_rule("/metrics/", view_func=metrics, strict_slashes=False)
    app.add_url_rule("/healthz", view_func=healthz)
