# Two commands do all set-up on a fresh machine (Python 3.11 + pip):
#   make run    create .venv, install everything, run the main job on embedded defaults
#   make test   create the same .venv if missing, run the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.alloop-installed
CAMPAIGN ?= runs/quickstart.alloop
CONFIG ?= configs/quickstart.yaml

.PHONY: run test test-slow lint bench-surrogate bench-oracle-search bench-oracle-accuracy bench-al

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# torch first: the CPU build on disk; a later ranged requirement then pulls nothing more
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[mlip,dist,dev]"
	touch $(STAMP)

run: $(STAMP)
	@mkdir -p runs
	@if [ -e $(CAMPAIGN) ]; then echo "campaign $(CAMPAIGN) exists: showing it"; \
	else $(BIN)/alloop init $(CONFIG) --campaign $(CAMPAIGN); fi
	$(BIN)/alloop status $(CAMPAIGN)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or dft"

lint: $(STAMP)
	$(BIN)/ruff check loop surrogate oracles store tests benchmarks
