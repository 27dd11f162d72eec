# The two commands of the README: `make run` runs the engine, `make test` passes the tests.
# Optional for `make run`: PORT (8000), DATA_DIR (~/.tork_ray), SLOTS (queue:default slots, default = CPUs).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

RUN_ENV := $(if $(PORT),TORK_COORDINATOR_ADDRESS=127.0.0.1:$(PORT)) \
           $(if $(DATA_DIR),TORK_DATA_DIR=$(DATA_DIR)) \
           $(if $(SLOTS),TORK_WORKER_QUEUES_DEFAULT=$(SLOTS))

.PHONY: run test venv docker image runtimes postgres sshd chromium ui-assets ray-up-check lint unit bench bench-cluster clean

run: venv docker image
	$(RUN_ENV) $(BIN)/tork-ray run standalone

# --durations: every run's log ends with its slowest steps (setups included), to see where the time goes.
test: venv docker image runtimes postgres sshd chromium
	$(BIN)/pytest -q -p no:cacheprovider --durations=30

unit: venv
	$(BIN)/pytest -q tests/unit

lint: venv
	$(BIN)/ruff check tork_ray tests benchmarks
	$(BIN)/ruff format --check tork_ray tests benchmarks
	$(BIN)/mypy tork_ray

venv: $(VENV)/.installed ui-assets

# htmx and its SSE extension for the web UI, from the npm registry, served by the engine (works offline).
ui-assets:
	@scripts/fetch-ui-assets.sh

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Python 3.11 or newer is needed as $(PYTHON)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); } || { echo "error: cannot create a venv: install python3-venv"; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

docker:
	@scripts/ensure-docker.sh

image: docker
	@scripts/build-test-image.sh

runtimes: image
	@scripts/ensure-runtimes.sh

postgres:
	@scripts/ensure-postgres.sh

# openssh-server and rsync, for the `ray up` check (tests/e2e/test_ray_up.py runs it in `make test`).
sshd:
	@scripts/ensure-sshd.sh

# Debian's chromium, for the web UI's browser tests (tests/ui/, Playwright pointed at /usr/bin/chromium).
chromium:
	@scripts/ensure-chromium.sh

# `ray up` on this machine, for real: see scripts/ray-up-check.sh (as root; about 3 minutes).
ray-up-check: venv docker image sshd
	scripts/ray-up-check.sh $(VENV)

# Every scenario against its baseline in one run: a table, benchmarks/results/bench.json and bench.png.
# QUICK=1: every scenario small (a smoke run, as make test runs it).
bench: venv docker image runtimes postgres
	$(BIN)/python -m benchmarks $(if $(QUICK),--quick)

# 1,000 jobs on a two-node local cluster with PostgreSQL against standalone SQLite (benchmarks/README.md).
bench-cluster: venv postgres
	$(BIN)/python -m benchmarks.cluster_bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
