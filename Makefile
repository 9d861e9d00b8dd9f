# The README's commands. Each target creates the virtual environment it needs if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= $(or $(CXR_DATA_DIR),../shared/data/chest_xray)

.PHONY: serve dicom-node pacs test test-data lint format train evaluate bench soak audit docs docs-serve clean-venv

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

## serve: set up if needed, then serve the shipped model on http://$(HOST):$(PORT) (docs at /docs)
serve: $(VENV)/.installed
	$(PY) -m app serve --host $(HOST) --port $(PORT)

## dicom-node: the shipped model as a DICOM node on port 11112 (settings: DICOM_* variables)
dicom-node: $(VENV)/.installed
	$(PY) -m app dicom-node

## pacs: the DICOM node and a local Orthanc (Debian's package) wired to it, web UI on :8042
pacs: $(VENV)/.installed
	$(PY) -m app.dicom_node.orthanc

## test: set up if needed, then run the whole test suite (no development data needed)
test: $(VENV)/.installed
	$(PY) -m pytest

## test-data: the checks that need the development data (../shared/data or $$CXR_DATA_DIR)
test-data: $(VENV)/.installed
	$(PY) -m pytest -m devdata

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

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

## audit: known vulnerabilities in the installed dependencies (pip-audit needs PyPI's JSON API or
## OSV; where neither answers, the partial check compares each package with its latest release)
audit: $(VENV)/.installed
	$(VENV)/bin/pip-audit --progress-spinner off || $(PY) scripts/pypi_latest_audit.py

## docs: build the documentation site into site/ (strict: a broken link or missing results file fails)
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## docs-serve: serve the documentation with live reload on http://127.0.0.1:8001/
docs-serve: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

clean-venv:
	rm -rf $(VENV)
