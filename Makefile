# Two commands for a new user: `make run` (set up, ingest the demo corpus, show it) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv lint bench clean-venv

venv: $(STAMP)

# Rebuilt only when the dependency pins change; pip's wheel cache makes a re-install quick.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "narrative-compare needs Python 3.11+: set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/ncompare demo --corpus examples/corpus

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/ingest.py

clean-venv:
	rm -rf $(VENV)
