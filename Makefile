# responsys-assets: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export UV_PYTHON ?= $(shell command -v $(PYTHON))

.PHONY: help install system-deps demo dev test test-reliability bench lint validate clean

help:
	@echo "make demo   - install, start the sandbox, run the whole pipeline, show the result"
	@echo "make test   - install what the tests need (incl. sshd, gnupg, chromium) and run them"
	@echo "make dev    - sandbox + Dagster UI on http://127.0.0.1:3000"
	@echo "make bench  - benchmarks, written to bench/RESULTS.md"

$(BIN)/responsys-assets: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen --quiet
	@touch $@

install: $(BIN)/responsys-assets $(DAGSTER_HOME)/dagster.yaml

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Real OpenSSH, GnuPG and Chromium for the tests (Debian packages; needs root or sudo).
system-deps:
	@scripts/system-deps.sh

demo: install
	@scripts/demo.sh

dev: install
	@scripts/dev.sh

validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml

test: install system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-reliability: install system-deps
	$(BIN)/python -m pytest -q -m reliability

bench: install system-deps
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check responsys_assets tests bench
	$(BIN)/ruff format --check responsys_assets tests bench

clean:
	rm -rf $(VENV) .dagster_home warehouse/*.duckdb* warehouse/landing warehouse/sandbox
