# Two commands for a new user: `make run` (set up, ingest the demo corpus, open the app) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make app` serves; e.g. `make app APP_ADDRESS=0.0.0.0 APP_PORT=8080` to reach it from other machines.
APP_ADDRESS ?= 127.0.0.1
APP_PORT ?= 8501

.PHONY: run app test venv lint bench clean-venv stance-model stress integration

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
	$(BIN)/python bench/stance.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/compare.py
	$(BIN)/python bench/report.py

# Several processes on one store (two ingests, readers, asks), embedded and on a Chroma server; checks that
# every document an ingest reported is stored and findable, with no orphan chunks. Minutes; not in `make test`.
stress: venv
	$(BIN)/python scripts/stress.py --trials 10 --docs 300
	$(BIN)/python scripts/stress.py --trials 10 --docs 300 --server

# The claim-stance cross-encoder (about 90 minutes on 2 cores; outputs cached under build/): FNC-1 pairs ->
# passages (project venv) -> fine-tune in two stages and export in a separate torch venv -> int8 ONNX,
# thresholds and measured figures into compare/resources/stance/ (project venv). Stage 1: 1,050 steps on
# passages without the refute bonus; stage 2: 1.5 epochs on the shipped passage spec, disagree pairs x3.
# Needs ../shared/corpus/fnc1_train and fnc1.
stance-model: venv
	$(BIN)/python scripts/stance_data.py --out build/stance --refute-bonus 0
	$(BIN)/python scripts/stance_data.py --out build/stance_v2
	read -r TRAIN_ENV BASE_MODEL <<< "$$(bash scripts/make_train_env.sh | tail -1)"; \
	test -f build/stance/model/best.pt || $$TRAIN_ENV/bin/python scripts/train_stance_model.py \
		--data build/stance --base $$BASE_MODEL --out build/stance/model --epochs 2 --max-steps 1050 \
		--evals-per-epoch 2; \
	test -f build/stance_v2/model/model.onnx || $$TRAIN_ENV/bin/python scripts/train_stance_model.py \
		--data build/stance_v2 --base $$BASE_MODEL --out build/stance_v2/model --init build/stance/model/best.pt \
		--epochs 1.5 --lr 4e-5 --class-power 0.7 --oversample-disagree 3 --evals-per-epoch 3
	$(BIN)/python scripts/build_stance_onnx.py --model build/stance_v2/model --data build/stance_v2

# The product against a real OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M-Instruct on loopback
# (tests/integration). The server's venv is built once into build/llama-env (about 8 minutes on 2 cores: it
# compiles llama.cpp) and reused; results and timings go to build/integration/results.json. Not in `make test`.
integration: venv
	bash scripts/make_llama_env.sh
	NCOMPARE_INTEGRATION=1 $(BIN)/python -m pytest -q tests/integration -p no:cacheprovider

clean-venv:
	rm -rf $(VENV)
