# Observability Lab: `make help` lists the targets.
.DEFAULT_GOAL := help
.PHONY: help install deps native-deps run native up down test check bench scenario experiment dashboards lint

VENV := .venv
PY := $(VENV)/bin/python
# `make run` and `make native` need a multiprocess directory per run: gunicorn empties it at start.
export PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/.lab/run/prometheus-multiproc

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(PY): app/requirements.txt pyproject.toml
	python3 -m venv $(VENV) || { apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r app/requirements.txt -e '.[dev]'
	@touch $(PY)

install: $(PY) ## create .venv with the app's pinned dependencies and the dev tools

deps: $(PY) ## install the native stack's Debian and npm packages (root on Debian/Ubuntu)
	$(PY) -m lab deps

native-deps: deps

# .env (if any) is read by python-dotenv's CLI; the shell's environment wins, as with compose.
DOTENV_RUN = $(if $(wildcard .env),$(VENV)/bin/dotenv --file .env run --no-override --)

run: $(PY) ## the app alone under gunicorn on 127.0.0.1:$APP_PORT (no backends needed; reads .env)
	@mkdir -p $(PROMETHEUS_MULTIPROC_DIR)
	$(DOTENV_RUN) $(VENV)/bin/gunicorn --config app/gunicorn.conf.py

native: deps ## the whole stack without Docker (Grafana excepted), in the foreground; Ctrl-C stops it
	$(PY) -m lab dotenv
	$(PY) -m lab native

native-ha: deps ## beyond one machine, natively: 2 apps, 2 Prometheus, 3 Alertmanagers, a store; StatsD proxy, relay, 3 graphites
	$(PY) -m lab dotenv
	$(PY) -m lab native --ha --data-dir .lab/native-ha

# An old docker client without the Compose v2 plugin says only "unknown flag: --build".
COMPOSE_CHECK = @docker compose version >/dev/null 2>&1 || { \
	echo "make $@ needs Docker with the Compose v2 plugin (\`docker compose version\` fails here)." >&2; \
	echo "Without Docker: make native (the same stack from Debian packages)." >&2; exit 1; }

# The URLs name the ports the engine published (`docker compose port`): the
# values compose used are in .env, not in make's environment.
up: ## the whole stack with Docker Compose (creates .env with fresh secrets if missing)
	$(COMPOSE_CHECK)
	python3 lab/stack/dotenv.py
	docker compose up --build --wait
	@for service in grafana:3000 app:5000 worker:8000 prometheus:9090 alertmanager:9093 alert-sink:9095 graphite:8080 loadgen:8089; do \
		address=$$(docker compose port $${service%:*} $${service#*:}) || exit 1; \
		echo "$${service%:*}: http://$$address/"; \
	done

down: ## stop the compose stack (data stays in named volumes; `docker compose down -v` resets)
	$(COMPOSE_CHECK)
	docker compose down

# Two workers, each test file whole on one, the files of the one live stack together, the groups that
# start stacks sent out first (tests/conftest.py).
PARALLEL := -n 2 --dist loadgroup --no-loadscope-reorder

test: install deps ## every test: unit tests and integration tests against live native stacks, on 2 workers
	$(PY) -m pytest $(PARALLEL)

check: install deps ## the edit-test loop: lint, then every test that starts no process (under a minute)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -m "not processes" $(PARALLEL)

bench: install deps ## measure instrumentation and scrape cost on this machine (bench/results.md)
	$(PY) -m lab bench

scenario: install deps ## one pitfall measured, truth vs naive vs the lab (ID=udp-loss; no ID: the list)
	$(PY) -m lab scenario $(if $(ID),$(ID),--list) $(ARGS)

experiment: $(PY) ## pull vs push under an error and a latency burst, against the running stack (ARGS=...)
	$(VENV)/bin/lab experiment $(ARGS)

dashboards: $(PY) ## regenerate grafana/dashboards/*.json from lab/dashboards (the tests fail on stale JSON)
	$(PY) -m lab dashboards

lint: $(PY) ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
