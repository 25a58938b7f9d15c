import os
# The test suite never touches the network: hub lookups fail fast instead of retrying for ~23 s.
for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"): os.environ.setdefault(k, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; run with `pytest -m slow`")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; run with `pytest -m gpu`")

def pytest_collection_modifyitems(config, items):
    import pytest
    marks = config.getoption("-m") or ""
    for item in items:
        for m in ("slow", "gpu"):
            if m in item.keywords and m not in marks:
                item.add_marker(pytest.mark.skip(reason=f"{m} test: run with `pytest -m {m}`"))
