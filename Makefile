# `make demo` and `make test` work on a fresh machine: both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export DO_NOT_TRACK := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup services demo serve stop test test-fast lint format bench clean

setup:
	@bash scripts/bootstrap.sh

services:
	@bash scripts/services.sh postgres

demo: setup
	@bash scripts/services.sh
	@bash scripts/demo.sh

serve: setup
	@bash scripts/services.sh
	$(VENV)/bin/rag serve

stop:
	@if [ -f .rag/serve.pid ] && kill "$$(cat .rag/serve.pid)" 2>/dev/null; then \
		echo "stopped"; else echo "not running"; fi; rm -f .rag/serve.pid

test: setup services
	$(PY) -m pytest

test-fast: setup services
	$(PY) -m pytest -m "not slow and not postgres"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup services
	$(PY) bench/ingest.py
	$(PY) bench/query.py
	$(PY) bench/auth.py
	$(PY) bench/verify.py

clean:
	rm -rf .rag .pytest_cache .mypy_cache .ruff_cache
