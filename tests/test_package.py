"""The package's shape: modules import each other without circles (module-level imports; an import inside a
function is deliberate laziness and does not count), and the evaluation modules stay small."""
import ast
from pathlib import Path

import locus

PKG = Path(locus.__file__).parent


def module_imports(path: Path) -> set[str]:
    "The `locus` modules a file imports at module level (`from .x import`, `from locus.x import`, `import locus.x`)."
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1: out.add(mod.split(".")[0] if mod else "")
            elif mod.startswith("locus."): out.add(mod.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("locus.")}
    return out - {""}


def test_no_import_circles():
    graph = {p.stem: module_imports(p) for p in PKG.glob("*.py") if p.stem != "__init__"}
    state, path = {}, []
    def visit(m):
        if state.get(m) == "done": return
        assert state.get(m) != "open", "import circle: " + " -> ".join(path[path.index(m):] + [m])
        state[m] = "open"; path.append(m)
        for n in sorted(graph.get(m, ())): visit(n)
        path.pop(); state[m] = "done"
    for m in sorted(graph): visit(m)
    assert "evaluate" in graph["dualfocus"] and "benchmarks" in graph["evaluate"]    # the graph was read
    assert "dualfocus" not in graph["evaluate"]                                      # modes are found by name


def test_cycle_detector_finds_a_circle(tmp_path):
    (tmp_path / "a.py").write_text("from .b import x\n"); (tmp_path / "b.py").write_text("from locus.a import y\n")
    assert module_imports(tmp_path / "a.py") == {"b"} and module_imports(tmp_path / "b.py") == {"a"}


def test_evaluation_modules_stay_small():
    for name in ("answers", "benchmarks", "fixtures", "evaluate", "dualfocus", "scenes", "data", "preflight", "reproduce", "config", "train"):
        n = len((PKG / f"{name}.py").read_text().splitlines())
        assert n <= 490, f"locus/{name}.py has {n} lines"


def test_config_names_still_import_from_train():
    """A run's settings and their checks live in `locus.config`; `locus.train` imports them, so the old import paths
    give the very same objects, and `locus.config` does not import `locus.train` back."""
    import locus.config as C, locus.train as T
    from locus.train import (BUILTIN_MODELS, LOCUS_GRPO_DEFAULTS, REQUIRED_COLUMNS, ConfigError, LocusConfig,  # noqa: F401
                             check_data, check_run, make_parser, parse_config, quiet_known_noise)
    for name in C.__all__: assert getattr(T, name) is getattr(C, name), name
    assert LocusConfig.__module__ == "locus.config" and issubclass(ConfigError, ValueError)
    assert "config" in module_imports(PKG / "train.py") and "train" not in module_imports(PKG / "config.py")
