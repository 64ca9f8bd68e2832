"""`lab native`, `lab deps` and `lab dotenv`: the stack without Docker, and every local server the lab runs.

native.py runs the stack in the foreground: prepare.py writes the configs that native_config.py
(ha.py, ha_push.py for the HA topology) derives from the files the containers mount, services.py
says what runs and how each is seen ready; processes.py is the one supervisor;
deps.py installs the Debian and npm packages; gunicorn.py starts the app (or a
peer's, or a naive setup's) under gunicorn on a free port for the bench, the
scenarios and the tests; statsd_daemon.py, otlp_sink.py and alert_sink.py are
the small servers (the alert sink is also a compose service); dotenv.py writes
.env with fresh secrets for compose.
"""
