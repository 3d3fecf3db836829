PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: .venv venv test lint serve bench bench-proxy clean

# The environment: created once, refreshed when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# `make .venv` (or `make venv`): the environment with the dev extras.
.venv venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check s4 tests benchmarks

test: venv lint
	$(BIN)/python -m pytest -q

serve: venv
	$(BIN)/s4 serve

bench: venv
	$(BIN)/s4 bench codecs

bench-proxy: venv
	$(BIN)/python benchmarks/proxy_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
