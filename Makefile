# One entry point for humans and CI. Every target sets up .venv/ first, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE ?= examples/overnight_full_cascade.jsonl

.PHONY: setup prereqs demo test lint unit bench bench-fuzz bench-cost chaos local-stack clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# The distribution was called "cascade" before it became cascade-router (the PyPI name is another
	@# project's); a venv made before the rename still has it registered, with the same `cascade` script.
	$(BIN)/pip uninstall --quiet --yes cascade 2>/dev/null || true
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/cascade replay $(EXAMPLE) --out .venv/demo-timeline.jsonl --report .venv/demo-report.html
	$(BIN)/cascade status --timeline .venv/demo-timeline.jsonl

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy router policies views adapters ops
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile ops/docker/*.Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

# The Google Cloud SDK's Pub/Sub and Firestore emulators and Java 17: each one missing is named, with how to
# get it, before anything else runs (tests/support/prereqs.py). Silent when all are there.
prereqs:
	$(PYTHON) -m tests.support.prereqs

test: prereqs lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

bench: setup
	$(BIN)/python -m bench.replay_throughput

# Intake on CASES hostile bodies (docs/benchmarks.md, "Hostile input"); a short run is in `make test`.
CASES ?= 100000
bench-fuzz: setup
	$(BIN)/python -m bench.fuzz_intake --cases $(CASES)

# cascade vs a bare relay, each on fresh emulators (docs/benchmarks.md, "Router cost"). ~2 min; not in `make test`.
EVENTS ?= 3000
RATE ?= 100
INSTANCES ?= 1
bench-cost: setup
	$(BIN)/python -m bench.router_cost --events $(EVENTS) --rate $(RATE) --instances $(INSTANCES)

# The fault suite (docs/chaos.md): TRIALS seeded trials of 3 daemons under kill -9, a Firestore stall and a
# BigQuery outage, ~20 s each; one summary line, exit 1 if any check failed. SEED=S re-runs from seed S
# (trial i has seed S+i). A one-trial version is in `make test` (tests/integration/test_chaos.py).
TRIALS ?= 100
SEED ?=
chaos: setup
	$(BIN)/python -m bench.chaos --trials $(TRIALS) $(if $(SEED),--seed $(SEED))

# docker-compose.yml without Docker: the emulators, provision, `cascade run` and `cascade publish` as processes
# (tests/support/local_stack.py); prints /status, then stops everything. SPEED=60 for the compose pace.
SPEED ?= 600
local-stack: setup
	$(BIN)/python -m tests.support.local_stack --events $(EXAMPLE) --speed $(SPEED)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
