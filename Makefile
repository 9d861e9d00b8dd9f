# The README's commands. Each target creates the virtual environment it needs if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= $(or $(CXR_DATA_DIR),../shared/data/chest_xray)

.PHONY: serve test lint format train evaluate bench soak audit clean-venv

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

## serve: set up if needed, then serve the shipped model on http://$(HOST):$(PORT) (docs at /docs)
serve: $(VENV)/.installed
	$(VENV)/bin/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log --timeout-keep-alive 75

## test: set up if needed, then run the whole test suite
test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## train: retrain on DATA_DIR into models/retrained, then evaluate it on DATA_DIR/test
train: $(VENV)/.installed
	$(PY) -m training train --data-dir $(DATA_DIR) --out models/retrained
	$(PY) -m training evaluate --model models/retrained --data-dir $(DATA_DIR) --update-card

evaluate: $(VENV)/.installed
	$(PY) -m training evaluate --model models/default --data-dir $(DATA_DIR)

## bench: stage timings, HTTP latency/throughput, memory, soak, training speed -> benchmarks/results/
bench: $(VENV)/.installed
	$(PY) -m benchmarks.run

soak: $(VENV)/.installed
	$(PY) -m benchmarks.soak

## audit: known vulnerabilities in the installed dependencies (needs PyPI's JSON API or OSV)
audit: $(VENV)/.installed
	$(VENV)/bin/pip-audit --progress-spinner off

clean-venv:
	rm -rf $(VENV)
