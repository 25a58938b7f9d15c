"""Score one model of the micro-world comparison on the held-out sets of runs/miniature2/plan.json (greedy, plain image + question).

    OMP_NUM_THREADS=1 .venv/bin/python runs/miniature2/evaluate.py runs/miniature2/locus-s0      # -> runs/miniature2/eval/locus-s0/

Writes predictions.jsonl (one row per item; the primary metric's rows carry "tier": "primary") and metrics.json.
The sets are the gate's (gate.py), so the base's rows equal its gate results item for item.
"""
import argparse, json, os, time
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TQDM_DISABLE", "1")
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(1)
from locus.microworld import eval_set, generate, score
from locus.testing import load_pretrained_vlm

def sets():
    "name -> (tier, items): the primary metric's 1,000 test items, then the secondary sets (val seeds, as the gate's)."
    ts = {"tiny": 0.7, "small": 0.3}
    return {"primary": ("primary", eval_set("colour", 500, 20_000_000, "tiny", objects=(5, 7)) + eval_set("colour", 500, 20_050_000, "small", objects=(5, 7))),
            "primary_larger": ("secondary", eval_set("colour", 600, 20_100_000, "larger", objects=(5, 7))),
            "proxy_val": ("secondary", eval_set("proxy", 500, 10_400_000, cues=ts)),
            "ground_larger": ("secondary", eval_set("ground", 300, 10_300_000, "larger")),
            "ground_small": ("secondary", eval_set("ground", 200, 10_320_000, "small")),
            "ground_tiny": ("secondary", eval_set("ground", 200, 10_310_000, "tiny")),
            "shape": ("secondary", eval_set("shape", 300, 10_500_000))}

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("model", help="a model folder: runs/miniature2/base or a condition's run folder")
    p.add_argument("--name", default=None, help="default: the folder's name")
    p.add_argument("--out", default="runs/miniature2/eval")
    p.add_argument("--limit", type=int, default=0, help="a quick check: the first LIMIT items of each set")
    a = p.parse_args()
    name = a.name or Path(a.model).name; out = Path(a.out) / name; out.mkdir(parents=True, exist_ok=True); t0 = time.time()
    model, proc = load_pretrained_vlm(a.model); model.eval(); rows = []
    for set_name, (tier, items) in sets().items():
        items = items[:a.limit or None]
        for e, c in zip(items, generate(model, proc, items, max_new_tokens=16, batch_size=32)):
            rows.append(dict(set=set_name, tier=tier, seed=e["seed"], kind=e["kind"], bucket=e["bucket"], n_objects=e["n_objects"],
                             answer=e["answer"], completion=c, **score(e, c)))
    with open(out / "predictions.jsonl", "w") as f:
        for r in rows: f.write(json.dumps(r) + "\n")
    m = {}
    for s in dict.fromkeys(r["set"] for r in rows):
        rs = [r for r in rows if r["set"] == s]; key = "correct" if "correct" in rs[0] else "iou"
        m[s] = dict(n=len(rs), **{k: float(np.mean([r[k] for r in rs])) for k in ("correct", "iou", "acc50", "parsed") if k in rs[0]})
    json.dump(dict(model=a.model, metrics=m, seconds=round(time.time() - t0, 1)), open(out / "metrics.json", "w"), indent=1)
    print(name, json.dumps({s: round(v.get("correct", v.get("iou")), 4) for s, v in m.items()}), f"{time.time() - t0:.0f}s", flush=True)
