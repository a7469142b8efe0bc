# rollkeeper — the commands the README talks about. Every target builds the venv first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format typecheck bench faults demo clean

$(BIN)/rollkeeper: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## run: the service in the foreground, on defaults (or $$ROLLKEEPER_CONFIG)
run: $(BIN)/rollkeeper
	$(BIN)/rollkeeper run

## test: the whole test suite (what CI runs)
test: $(BIN)/rollkeeper
	$(BIN)/pytest

## lint: ruff and mypy --strict on the package, the tests and the benchmarks (what CI checks)
lint: $(BIN)/rollkeeper
	$(BIN)/ruff check daemon tests bench
	$(BIN)/ruff format --check daemon tests bench
	$(BIN)/mypy --strict daemon/rollkeeper tests bench

format: $(BIN)/rollkeeper
	$(BIN)/ruff format daemon tests bench
	$(BIN)/ruff check --fix daemon tests bench

## bench: the benchmarks in bench/ (figures to bench/results/)
bench: $(BIN)/rollkeeper
	$(BIN)/python -m bench.run_all

## faults: the reliability campaigns at full size; figures to docs/reliability.md
## (POWER_CUT_TRIALS=0 leaves the power-cut campaign out; it needs FUSE: Debian's fuse3)
CRASH_TRIALS ?= 300
UNPLUG_TRIALS ?= 500
DISK_FULL_TRIALS ?= 50
POWER_CUT_TRIALS ?= 300
SEED ?= 1
faults: $(BIN)/rollkeeper
	status=0; \
	$(BIN)/python -m tests.reliability.run_faults --crash-trials $(CRASH_TRIALS) \
		--unplug-trials $(UNPLUG_TRIALS) --disk-full-trials $(DISK_FULL_TRIALS) --seed $(SEED) \
		--write-docs docs/reliability.md || status=1; \
	if [ "$(POWER_CUT_TRIALS)" != 0 ]; then \
		$(BIN)/python -m tests.reliability.run_power_cut --trials $(POWER_CUT_TRIALS) \
			--seed $(SEED) --write-docs docs/reliability.md || status=1; \
	fi; \
	exit $$status

## bench-venvs: dcimport (a peer in bench/peers.py) in its own venv: it pins pymobiledevice3 9.x
bench-venvs:
	$(PYTHON) -m venv bench/.venvs/dcimport
	bench/.venvs/dcimport/bin/pip install --quiet dcimport==0.2.1

## config-example: regenerate config.example.toml from the schema (a test checks they match;
## the file is package data, linked from the top of the tree)
config-example: $(BIN)/rollkeeper
	$(BIN)/python -m rollkeeper.config.template > daemon/rollkeeper/resources/config.example.toml

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
