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

.PHONY: demo miniature setup setup-docs test test-nbs test-py test-gpu test-slow check nbs docs docs-check docs-browser

$(BIN)/.locus-installed: settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	# lmms-eval's own scoring code, the reference of tests/test_lmms_parity.py: without its model zoo (--no-deps)
	$(BIN)/python -m pip install -q --no-deps lmms-eval==0.7.3
	touch $@

setup: $(BIN)/.locus-installed

$(BIN)/.locus-docs-installed: $(BIN)/.locus-installed
	$(BIN)/python -m pip install -q -e ".[dev,docs]"
	touch $@

setup-docs: $(BIN)/.locus-docs-installed

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
# Kernels get matplotlib's inline backend (not the Agg exported above), so plt.show() figures land in the notebook.
nbs: setup
	env -u MPLBACKEND $(BIN)/python tools/run_nbs.py
	$(BIN)/nbdev_clean

# The reader's path, generated from nbs/ offline in seconds (no Quarto): the site in docs/ (GitHub Pages serves it)
# and README.md from nbs/index.ipynb. Both are committed: run `make docs` after changing a notebook, then commit.
docs: setup-docs
	$(BIN)/python tools/docs.py build

# Pipeline tests; a strict rebuild must equal the committed docs/ and README.md; every notebook has a page, every
# exported symbol an API entry; no broken link or anchor; nothing fetched from the internet.
docs-check: setup-docs
	$(BIN)/python -m pytest -q tests/test_docs.py
	$(BIN)/python tools/docs.py check

# The committed site in headless Chromium (Debian's chromium + chromium-driver): nav, API entries, figures, maths,
# search, no outside requests. SHOTS=/tmp/shots also saves screenshots of the front page and a notebook page.
docs-browser: setup-docs
	$(BIN)/python tools/docs_browser.py $(if $(SHOTS),--screenshots $(SHOTS))

# The main job on any machine, offline: synthetic cues -> GRPO (LoRA) on the tiny Qwen2.5-VL -> runs/cpu-demo
# (adapter, locus_config.yaml, metrics.md, samples/). On a GPU: `.venv/bin/locus train --config configs/qwen2.5-vl-3b-qlora.yaml`.
demo: setup
	$(BIN)/locus train --config configs/cpu_demo.yaml

# LOCUS in miniature from scratch (nbs/09_miniature.ipynb): both candidate bases, their gate, the RL comparison when one passes, the verdict
miniature: setup
	LOCUS=$(BIN)/locus bash runs/miniature.sh
