"""The verdict of the micro-world LOCUS comparison, by the rule fixed in runs/miniature2/plan.json; writes runs/miniature2/verdict.json.

    .venv/bin/python runs/miniature2/verdict.py

Reads gate.json, each LOCUS run's training log (metrics.jsonl: the IoU reward per step) and eval/<run>/predictions.jsonl.
"""
import argparse, functools, json
from pathlib import Path
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--root", default="runs/miniature2")
p.add_argument("--seeds", default="0,1,2")
p.add_argument("--resamples", type=int, default=10_000)
a = p.parse_args()
root, seeds = Path(a.root), [int(s) for s in a.seeds.split(",")]
plan, gate = json.loads((root / "plan.json").read_text()), json.loads((root / "gate.json").read_text())
@functools.cache
def preds(run): return [json.loads(l) for l in (root / "eval" / run / "predictions.jsonl").read_text().splitlines()]
def correct(run, tier="primary", set_name=None):
    rs = [r for r in preds(run) if (r["tier"] == tier if set_name is None else r["set"] == set_name)]
    return np.array([r["correct"] for r in rs]), [r["seed"] for r in rs]
miou = lambda run: float(np.mean([r["iou"] for r in preds(run) if r["set"] == "proxy_val"]))

base_miou = miou("base")
control = {}
for s in seeds:
    log = [json.loads(l) for l in (root / f"locus-s{s}" / "metrics.jsonl").read_text().splitlines()]
    rew = [h["rewards/iou_reward/mean"] for h in log if "rewards/iou_reward/mean" in h]
    start, end = float(np.mean(rew[:10])), float(np.mean(rew[-10:]))
    m = miou(f"locus-s{s}")
    control[f"locus-s{s}"] = dict(reward_first10=start, reward_last10=end, rise=end - start, proxy_val_miou=m, base_proxy_val_miou=base_miou,
                                  passed=bool(end - start >= 0.10 and m >= base_miou + 0.10))
conds = ("locus", "sft", "cpt")
C, items = {}, None
for c in conds:
    for s in seeds:
        v, ids = correct(f"{c}-s{s}"); C[c, s] = v
        assert items is None or ids == items, "every run must be scored on the same items"; items = ids
primary = {c: {s: float(C[c, s].mean()) for s in seeds} for c in conds}
primary["base"] = float(correct("base")[0].mean())
larger = {c: float(np.mean([correct(f"{c}-s{s}", set_name="primary_larger")[0].mean() for s in seeds])) for c in conds}
rng = np.random.default_rng(0); n, B = len(items), a.resamples
idx = rng.integers(0, n, (B, n))                                 # one item draw per resample, shared by every condition
per_run = {k: v[idx].mean(1) for k, v in C.items()}              # (B,) accuracy of each run on each resample's items
cond_acc = {}
for c in conds:
    pick = rng.integers(0, len(seeds), (B, len(seeds)))           # seeds with replacement, within the condition
    stack = np.stack([per_run[c, s] for s in seeds], 1)           # (B, seeds)
    cond_acc[c] = np.take_along_axis(stack, pick, 1).mean(1)
ci = {}
for other in ("sft", "cpt"):
    d = cond_acc["locus"] - cond_acc[other]
    point = float(np.mean(list(primary["locus"].values())) - np.mean(list(primary[other].values())))
    ci[f"locus-{other}"] = dict(point=point, low=float(np.percentile(d, 2.5)), high=float(np.percentile(d, 97.5)))
gate_ok, ctrl_ok = gate["passed"], all(v["passed"] for v in control.values())
harm_ok = all(larger["locus"] >= larger[o] - 0.03 for o in ("sft", "cpt"))
above = all(v["low"] > 0 for v in ci.values())
verdict = "uninformative" if not (gate_ok and ctrl_ok) else "effect" if above and harm_ok else "null"
out = dict(verdict=verdict, rule=plan["rl"]["decision_rule"], gate=dict(passed=gate_ok, items={k: g["passed"] for k, g in gate["gate"].items()}),
           positive_control=control, primary=primary, primary_larger=larger, ci=ci, larger_not_worse_by_3_points=harm_ok,
           largest_advantage_excluded={k: v["high"] for k, v in ci.items()} if verdict == "null" else None,
           n_items=n, seeds=seeds, resamples=B)
(root / "verdict.json").write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps(dict(verdict=verdict, ci=ci, control={k: v["passed"] for k, v in control.items()}), indent=1))
