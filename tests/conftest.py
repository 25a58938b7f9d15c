"""Shared pytest setup: offline by default, and the `gpu` / `slow` markers the Makefile selects with `-m`."""
import os

# Nothing in the tests may touch the hub; offline mode fails fast instead of retrying for ~23 s.
for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"): os.environ.setdefault(var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; runs only when selected with `-m gpu`")
    config.addinivalue_line("markers", "slow: long-running; runs only when selected with `-m slow`")


def pytest_collection_modifyitems(config, items):
    selected = config.getoption("-m") or ""
    for item in items:
        for mark in ("gpu", "slow"):
            if mark in item.keywords and mark not in selected:
                item.add_marker(pytest.mark.skip(reason=f"`{mark}` test: run with `pytest -m {mark}`"))


import warnings
# transformers 5.23 renames gradient_checkpointing -> activation_checkpointing; the GPU image's 5.17 only knows the old name
warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
