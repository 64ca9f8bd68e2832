"""Process metrics under gunicorn as a first fix of multiprocess mode adds them back.

The documented multiprocess registry (multiprocess_registry.py beside this) has no process_*
series. The usual fix (prometheus_flask_exporter #18 and its answers) registers prometheus_client's
ProcessCollector in that registry. It reads /proc/self: the process that answers the scrape, a
different worker each time, under the same unlabelled names.

    LAB_METRICS=prometheus gunicorn --config python:lab.scenarios.naive.process_collector
"""

from lab.peers import lab_gunicorn_settings

globals().update(lab_gunicorn_settings())
wsgi_app = "lab.scenarios.naive.multiprocess_registry:create_app(process_collector=True)"
