# One entry point for people and CI. `make test` on a fresh machine: venv, install, all tests.
# GPU-only and long notebook cells are skipped by default: `make test-gpu` / `make test-slow` run them.
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTHON ?= python3
export HF_HUB_OFFLINE = 1
export HF_DATASETS_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false
export MPLBACKEND = Agg

.PHONY: setup test test-nbs test-py test-gpu test-slow check nbs

$(BIN)/.locus-installed: settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.locus-installed

test: test-nbs test-py

test-nbs: setup
	$(BIN)/nbdev_test --n_workers 2

test-py: setup
	$(BIN)/python -m pytest -q tests

test-gpu: setup
	$(BIN)/nbdev_test --flags gpu
	$(BIN)/python -m pytest -q -m gpu tests

test-slow: setup
	$(BIN)/nbdev_test --flags slow
	$(BIN)/python -m pytest -q -m slow tests

# Notebooks and package agree, and notebooks carry no noise: both commands must leave git status unchanged.
check: setup
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	@test -z "$$(git status --porcelain -- nbs locus)" || { git status --porcelain -- nbs locus; \
	  echo "nbdev_clean/nbdev_export changed the files above: export from the notebooks and commit."; exit 1; }

# Re-execute every notebook top to bottom, in place, keeping outputs (run after editing a notebook).
nbs: setup
	$(BIN)/python tools/run_nbs.py
	$(BIN)/nbdev_clean
