# Two commands for a new user: `make run` (set up, ingest the demo corpus, open the app) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make app` serves; e.g. `make app APP_ADDRESS=0.0.0.0 APP_PORT=8080` to reach it from other machines.
APP_ADDRESS ?= 127.0.0.1
APP_PORT ?= 8501

.PHONY: run app test venv lint bench clean-venv

venv: $(STAMP)

# Rebuilt only when the dependency pins change; pip's wheel cache makes a re-install quick.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "narrative-compare needs Python 3.11+: set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Ingests the demo corpus on first run (with a progress bar), shows what it can answer, then starts the app.
run: venv
	$(BIN)/ncompare demo --corpus examples/corpus
	@$(MAKE) --no-print-directory app

# The Streamlit app (settings in .streamlit/config.toml); Ctrl-C stops it.
app: venv
	@echo ""
	@echo "narrative-compare app: open http://$(APP_ADDRESS):$(APP_PORT) in your browser (Ctrl-C to stop)"
	$(BIN)/streamlit run app.py --server.address $(APP_ADDRESS) --server.port $(APP_PORT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# Benchmarks (not tests): each prints JSON with a baseline measured in the same run. Needs ../shared/corpus.
bench: venv
	$(BIN)/python bench/embedder.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/compare.py
	$(BIN)/python bench/report.py

clean-venv:
	rm -rf $(VENV)
