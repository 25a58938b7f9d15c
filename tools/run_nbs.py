"""Execute notebooks top to bottom in place, so they are committed with the outputs the docs show.

Usage: python tools/run_nbs.py [nbs/00_boxes.ipynb ...]   (default: every notebook in nbs/, in name order)
Cells flagged `#| gpu` or `#| slow` are skipped (keeping their committed outputs) unless LOCUS_RUN_FLAGS names
their flag (e.g. LOCUS_RUN_FLAGS="gpu slow")."""
import os, re, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

flags = set(os.environ.get("LOCUS_RUN_FLAGS", "").split())
os.environ.pop("MPLBACKEND", None)   # the kernel must use its inline backend, or figures are lost (make exports Agg)
skip_re = re.compile(r"^\s*#\|\s*(gpu|slow|eval:\s*false)\b", re.M)

def run(path: Path):
    nb = nbformat.read(path, as_version=4)
    skipped = []
    for c in nb.cells:
        if c.cell_type != "code": continue
        m = skip_re.search(c.source)
        if m and m.group(1) not in flags:
            skipped.append((c, c.source, c.get("outputs", []), c.get("execution_count"))); c.source = "pass"
    t = time.time()
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    # flagged cells keep the outputs they had (e.g. figures measured on a GPU and committed)
    for c, src, outs, n in skipped: c.source, c.outputs, c.execution_count = src, outs, n
    nbformat.write(nb, path)
    print(f"{path}: {time.time()-t:.1f}s ({len(skipped)} flagged cells not run)")

if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path("nbs").glob("[0-9]*.ipynb")) + [Path("nbs/index.ipynb")]
    for p in paths: run(p)
