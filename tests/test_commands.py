"""Every `locus ...` command printed in README.md and in the notebooks' markdown parses with the current CLI.

The commands are collected from inline code spans and fenced code blocks of README.md and of every markdown cell in
nbs/*.ipynb (and from `!locus ...` lines or `%%bash` cells of code cells), placeholders replaced by real temporary
paths, and each is run through `locus.cli.parse_command`: exactly what `locus` parses, without running the command
(no model loaded, nothing trained). `... --help` commands run through `locus.cli.main` and must exit 0."""
import contextlib, json, os, re, shlex, shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import pytest

from locus.cli import COMMANDS, main, parse_command

ROOT = Path(__file__).resolve().parent.parent
DOC_CONFIG = ROOT / "configs" / "cpu_demo.yaml"        # stands in for a placeholder YAML file (`my.yaml`, `--config ...`)
TMP, YAML = "{TMP}", "{YAML}"                          # placeholders filled in per test with real temporary paths

# Documented commands that are wrong in a notebook another piece of work owns: expected to fail until it lands.
XFAIL: dict = {}   # (notebook, command) -> reason, for a documented command known not to parse

# --- collecting the commands
FENCE = re.compile(r"^\s*(```|~~~)")
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)

def markdown_commands(text: str) -> list[str]:
    "Command lines in markdown: every line of a fenced block (`\\` continuations joined), every inline code span."
    out, prose, block, fenced = [], [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            if fenced: out += shell_lines("\n".join(block)); block = []
            fenced = not fenced; prose.append(""); continue
        (block if fenced else prose).append(line)
    out += shell_lines("\n".join(block))                      # an unclosed fence: still read
    for m in SPAN.finditer("\n".join(prose)):
        span = " ".join(m.group(2).split())
        if is_locus(span, inline=True): out.append(span)
    return [c for c in out if is_locus(c)]

def shell_lines(text: str) -> list[str]:
    "Lines of shell text, continuations joined, a `$ ` prompt and `# comments` dropped."
    lines = [re.sub(r"(^|\s)#.*$", "", re.sub(r"^\s*\$\s+", "", l)) for l in re.sub(r"\\\n", " ", text).splitlines()]
    return [" ".join(l.split()) for l in lines if l.strip()]

def is_locus(cmd: str, inline: bool = False) -> bool:
    "A `locus` (or `.venv/bin/locus`) command line; inline, a bare `locus train` names the command and is not one."
    words = cmd.split()
    if not words or Path(words[0]).name != "locus": return False
    if len(words) == 1: return not inline
    if words[1].startswith("-"): return True
    return not inline or len(words) > 2

def notebook_commands(path: Path) -> list[str]:
    out = []
    for cell in json.loads(path.read_text())["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown": out += markdown_commands(src)
        elif cell["cell_type"] == "code":
            if re.match(r"\s*%%(bash|sh)\b", src): out += [c for c in shell_lines(src.split("\n", 1)[-1]) if is_locus(c)]
            out += [c for c in shell_lines("\n".join(l.strip()[1:] for l in src.splitlines() if l.strip().startswith("!")))
                    if is_locus(c)]
    return out

def collect() -> list[tuple[str, str]]:
    "(file, command) for every documented command, each once per file."
    found = [("README.md", c) for c in markdown_commands((ROOT / "README.md").read_text())]
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")): found += [(nb.stem, c) for c in notebook_commands(nb)]
    return list(dict.fromkeys(found))

def to_argv(cmd: str) -> list[str]:
    "The arguments after `locus`, placeholders replaced by `{TMP}` (a folder) or `{YAML}` (a config), repo paths made absolute."
    cmd = re.sub(r"<[^<>]*>", TMP, cmd)                                     # <fixture dir>, <run folder>
    cmd = re.sub(r"\b(FILE|my|your)\.ya?ml\b", YAML, cmd)
    cmd = re.sub(r"\b(DIR|PATH|FOLDER)\b", TMP, cmd)
    cmd = re.sub(r"(?<![\w/])runs/x\b", TMP + "/x", cmd)
    words, argv = shlex.split(cmd, comments=True)[1:], []
    for i, w in enumerate(words):
        if w == "...":                                                      # "more options", or a file left unnamed
            if argv and argv[-1] == "--config": argv.append(YAML)
            continue
        if w.endswith((".yaml", ".yml")) and not (ROOT / w).exists() and not w.startswith("{"): w = YAML
        elif not w.startswith("-") and "/" in w and "=" not in w and (ROOT / w).exists(): w = str(ROOT / w)
        argv.append(w)
    return argv

def fill(argv: list[str], tmp: Path) -> list[str]:
    (tmp / "dir").mkdir(exist_ok=True)
    yaml = tmp / "my.yaml"
    if not yaml.exists(): shutil.copy(DOC_CONFIG, yaml)
    return [a.replace(YAML, str(yaml)).replace(TMP, str(tmp / "dir")) for a in argv]

COLLECTED = collect()

def _short(cmd: str) -> str:
    words = cmd.split(); words[0] = "locus"
    s = " ".join(words)
    return s if len(s) <= 70 else s[:67] + "..."

def _case(file: str, cmd: str):
    reason = XFAIL.get((file, cmd))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(file, cmd, id=f"{file}: {_short(cmd)}", marks=marks)

# --- the tests
@pytest.mark.parametrize("file,cmd", [_case(f, c) for f, c in COLLECTED])
def test_documented_command_parses(file, cmd, tmp_path, capsys):
    argv = fill(to_argv(cmd), tmp_path)
    if not argv or {"-h", "--help"} & set(argv):            # `locus --help`, `locus <command> --help`: the real thing, exit 0
        try: code = main(argv)
        except SystemExit as e: code = e.code
        assert code in (0, None), f"`{cmd}` ({file}) exits {code}: {capsys.readouterr().err.strip()}"
        assert "usage:" in capsys.readouterr().out
        return
    try: name, f, kw = parse_command(argv)
    except SystemExit as e:
        pytest.fail(f"`{cmd}` ({file}) does not parse (exit {e.code}):\n{capsys.readouterr().err.strip()}", pytrace=False)
    assert name == argv[0] and callable(f) and isinstance(kw, dict)

def test_collector_finds_the_documented_commands():
    files = {f for f, _ in COLLECTED}
    assert len(COLLECTED) >= 14, COLLECTED                  # what the docs hold today: fewer means the extraction broke
    assert {"README.md", "05_train", "09_miniature", "10_cli"} <= files, files
    readme = [c for f, c in COLLECTED if f == "README.md"]
    assert any(c.startswith(".venv/bin/locus train ") for c in readme), readme       # a fenced block
    assert any(c.startswith("locus miniature ") for c in readme), readme             # a span in a table
    assert ("09_miniature", "locus miniature --help") in COLLECTED                    # a fenced line, its comment dropped

def test_extraction_of_spans_blocks_and_placeholders():
    md = ("Run `locus train --config my.yaml` (`locus train` names the command; `locus.train` is a module).\n\n"
          "```sh\n$ .venv/bin/locus eval tiny \\\n    --sources vstar=<fixture dir>   # offline\nbash other.sh\n```\n"
          "and `locus compare runs/a\nruns/b`.")
    cmds = markdown_commands(md)
    assert cmds == [".venv/bin/locus eval tiny --sources vstar=<fixture dir>",
                    "locus train --config my.yaml", "locus compare runs/a runs/b"], cmds
    assert to_argv(cmds[0]) == ["eval", "tiny", "--sources", "vstar={TMP}"]
    assert to_argv(cmds[1]) == ["train", "--config", "{YAML}"]
    assert to_argv("locus train --config ...") == ["train", "--config", "{YAML}"]
    assert to_argv("locus train --config configs/cpu_demo.yaml")[-1] == str(DOC_CONFIG)

@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c != "train"])   # `locus train --help`: tests/test_train.py
def test_help_through_main(cmd, capsys):
    with pytest.raises(SystemExit) as e: main([cmd, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: locus {cmd}")
