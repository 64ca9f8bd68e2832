"""/metrics in multiprocess mode as prometheus_client's docs build it: a fresh registry over the
workers' files (MultiProcessCollector), and nothing else. The docs say it: "custom collectors do
not work (e.g. cpu and memory metrics)": no process_* series at all.

    LAB_METRICS=prometheus gunicorn --config python:lab.scenarios.naive.multiprocess_registry
"""

from lab.peers import lab_gunicorn_settings

globals().update(lab_gunicorn_settings())
wsgi_app = "lab.scenarios.naive.multiprocess_registry:create_app()"


def create_app(process_collector: bool = False):
    """The lab's app with its /metrics route answered the documented way (and, with
    `process_collector`, with prometheus_client's ProcessCollector added to the registry)."""
    from flask import Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from app import create_app as create_lab_app

    app = create_lab_app()

    def metrics():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # the workers' counters, as the docs say
        if process_collector:
            ProcessCollector(registry=registry)  # /proc/self: the process answering this scrape
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    app.view_functions["metrics"] = metrics  # the lab's /metrics route, answered this way
    return app
