# Two commands matter: `make run` (serve with demo data) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= ./data

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m aggregata.examples --host $(HOST) --port $(PORT)
	AGGREGATA_DATA_DIR=$(DATA_DIR) $(BIN)/aggregata serve --host $(HOST) --port $(PORT) --demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/aggregata

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
