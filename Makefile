# AsterOS for Django. `make run` serves a working AsterOS; `make test` checks everything.
#
#   make run            venv, migrate, demo data (only the missing rows: a user's edits stay;
#                       `manage.py asteros demo --reset` restores them), admin user, serve on
#                       127.0.0.1:$ASTEROS_PORT (8080)
#   make test           venv, ruff (lint + format check), import layers, makemigrations --check, pytest
#   make lint | format  ruff and lint-imports | ruff's rewrite
#   make fuzz           the fuzz tests at full strength (FUZZ_EXAMPLES=200 per target)
#
# Variables: PYTHON (python3), HOST (127.0.0.1), PORT ($ASTEROS_PORT or 8080), PYTEST_ARGS.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= $(or $(ASTEROS_PORT),8080)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv dev-venv run test lint format check-migrations

help:
	@echo "make run     serve AsterOS with the demo data on http://$(HOST):$(PORT) (admin at /admin/)"
	@echo "make test    ruff, migrations check and the test suite"
	@echo "make lint    ruff check, format check and the import layers; make format rewrites"
	@echo "make fuzz    the fuzz tests (schemathesis, A2A, AG-UI, websockets, workflows) at 200 examples each"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when a requirements file is newer than the last install. Serving needs only
# requirements.txt; tests, lint and benchmarks add requirements-dev.txt.
$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP) $(DEV_STAMP)

venv: $(STAMP)
dev-venv: $(DEV_STAMP)

# Local use: DEBUG on unless the environment says otherwise (DEBUG off needs SECRET_KEY).
run: export DEBUG ?= 1
run: venv
	$(MANAGE) migrate --noinput
	$(MANAGE) asteros demo
	$(MANAGE) asteros ensure-admin
	$(MANAGE) runserver $(HOST):$(PORT)

# Tests never use a real secret; the variable only has to be set for settings to load.
test: export SECRET_KEY ?= make-test-not-a-secret
test: dev-venv lint check-migrations
	$(BIN)/pytest --durations=15 $(PYTEST_ARGS)

check-migrations: dev-venv
	$(MANAGE) makemigrations --check --dry-run

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: dev-venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# ---- benchmarks: bench/, BENCHMARKS.md ------------------------------------------------------
#   make bench            every scenario, side by side with Agno's AgentOS (bench-only venv)
#   make bench QUICK=1    fewer rounds and smaller levels (under 3 minutes on a quiet machine)
#   make bench SCENARIOS=1,2 BENCH_ARGS="--services env"
# The peer's venv (bench/.venv-peer) is reinstalled only when bench/peer-requirements.txt changes.

PEER_VENV := bench/.venv-peer
PEER_STAMP := $(PEER_VENV)/.installed
QUICK ?=
SCENARIOS ?=
BENCH_ARGS ?=

.PHONY: bench soak

$(PEER_VENV)/bin/python:
	$(PYTHON) -m venv $(PEER_VENV)

$(PEER_STAMP): bench/peer-requirements.txt | $(PEER_VENV)/bin/python
	$(PEER_VENV)/bin/python -m pip install --disable-pip-version-check -q -r bench/peer-requirements.txt
	touch $(PEER_STAMP)

bench: dev-venv $(PEER_STAMP)
	$(BIN)/python bench/bench_vs_agno.py $(if $(QUICK),--quick) $(if $(SCENARIOS),--scenarios $(SCENARIOS)) $(BENCH_ARGS)

# ---- soak: bench/soak.py (not in `make test`: minutes by design) ----------------------------
#   make soak                                      10,000 runs at 50 runs/s, then an audit
#   make soak SOAK_ARGS="--runs 2000 --rate 100"
SOAK_ARGS ?=

soak: dev-venv
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# ---- fuzz: the fuzz tests at full strength (tests/support/fuzzing.py) -------------------------
# `make test` runs the same tests bounded (a few dozen examples each, derandomized). This runs
# them with FUZZ_EXAMPLES examples per target (per operation for schemathesis), new random ones
# each time, and no per-test timeout. Tens of minutes on a laptop.
#   make fuzz                         200 examples per target
#   make fuzz FUZZ_EXAMPLES=1000 PYTEST_ARGS="tests/interfaces/a2a"
FUZZ_EXAMPLES ?= 200

.PHONY: fuzz
fuzz: export SECRET_KEY ?= make-test-not-a-secret
fuzz: export FUZZ_EXAMPLES := $(FUZZ_EXAMPLES)
fuzz: dev-venv
	$(BIN)/pytest -m fuzz -o timeout=0 $(PYTEST_ARGS)
