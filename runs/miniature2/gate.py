"""Evaluate the pretrained base against the gate fixed in runs/miniature2/plan.json; writes gate.json and results/*.jsonl.

    OMP_NUM_THREADS=1 .venv/bin/python runs/miniature2/gate.py [--base runs/miniature2/base]

Every set is the one plan.json names (kind, size, seeds); decoding as plan.json says.
"""
import argparse, json, os, time
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TQDM_DISABLE", "1")
import numpy as np, torch
torch.set_num_threads(1)
from locus.microworld import COLORS, KINDS, SHAPES, answer_balance, eval_set, generate, locus_reward, majority_share, score
from locus.microbase import MIX, mde, pretrain_example
from locus.testing import load_pretrained_vlm

p = argparse.ArgumentParser()
p.add_argument("--base", default="runs/miniature2/base")
p.add_argument("--out", default="runs/miniature2")
p.add_argument("--limit", type=int, default=0, help="a quick check of this script: only the first LIMIT items of each set")
a = p.parse_args()
out = os.path.join(a.out, "results"); os.makedirs(out, exist_ok=True)
t0 = time.time()
model, proc = load_pretrained_vlm(a.base); model.eval()
TINY_SMALL = {"tiny": 0.7, "small": 0.3}
sets = {"colour_larger": eval_set("colour", 300, 10_000_000, "larger"), "colour_tiny": eval_set("colour", 300, 10_100_000, "tiny"),
        "colour_small": eval_set("colour", 300, 10_200_000, "small"), "ground_larger": eval_set("ground", 300, 10_300_000, "larger"),
        "proxy_val": eval_set("proxy", 500, 10_400_000, cues=TINY_SMALL), "shape": eval_set("shape", 300, 10_500_000),
        "primary": eval_set("colour", 500, 20_000_000, "tiny", objects=(5, 7)) + eval_set("colour", 500, 20_050_000, "small", objects=(5, 7)),
        "primary_larger": eval_set("colour", 600, 20_100_000, "larger", objects=(5, 7)),
        "ground_tiny": eval_set("ground", 200, 10_310_000, "tiny"), "ground_small": eval_set("ground", 200, 10_320_000, "small")}
if a.limit: sets = {k: v[:a.limit] for k, v in sets.items()}
scores = {}
for name, items in sets.items():
    comps = generate(model, proc, items, max_new_tokens=16, batch_size=32)
    scores[name] = [dict(seed=e["seed"], bucket=e["bucket"], n_objects=e["n_objects"], answer=e["answer"], completion=c, **score(e, c)) for e, c in zip(items, comps)]
    with open(os.path.join(out, f"{name}.jsonl"), "w") as f:
        for r in scores[name]: f.write(json.dumps(r) + "\n")
    print(name, len(items), f"{time.time() - t0:.0f}s", flush=True)
mean = lambda name, key: float(np.mean([r[key] for r in scores[name]]))

# GRPO step 0: 64 proxy prompts (tiny:small 70:30), 8 samples each at temperature 1.0
grpo = eval_set("proxy", 64, 10_600_000, cues={"tiny": 45 / 64, "small": 19 / 64})[:a.limit or None]
torch.manual_seed(0)
comps = generate(model, proc, grpo, max_new_tokens=16, batch_size=16, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, num_return_sequences=8)
groups = [[(c, locus_reward(e, c), score(e, c)) for c in comps[8 * i:8 * i + 8]] for i, e in enumerate(grpo)]
with open(os.path.join(out, "grpo_step0.jsonl"), "w") as f:
    for e, g in zip(grpo, groups): f.write(json.dumps(dict(seed=e["seed"], cue=e["cue"], answer=e["answer"], completions=[c for c, _, _ in g], rewards=[r for _, r, _ in g])) + "\n")
parse = float(np.mean([s["parsed"] for g in groups for _, _, s in g]))
zero = float(np.mean([max(r for _, r, _ in g) - min(r for _, r, _ in g) < 1e-6 for g in groups]))
std = float(np.mean([np.std([r for _, r, _ in g]) for g in groups])); rmean = float(np.mean([r for g in groups for _, r, _ in g]))

colour_preds = [r["pred"] for n in ("colour_larger", "colour_tiny", "colour_small") for r in scores[n]]
_, col_share = majority_share(colour_preds); col_top = majority_share(colour_preds)[0]
shp_top, shp_share = majority_share([r["pred"] for r in scores["shape"]])
ts = float(np.mean([r["correct"] for n in ("colour_tiny", "colour_small") for r in scores[n]]))
cl = mean("colour_larger", "correct")
gate = {
 "colour_larger": dict(value=cl, rule=">= 0.70", passed=cl >= 0.70),
 "colour_size_gap": dict(value=dict(tiny=mean("colour_tiny", "correct"), small=mean("colour_small", "correct"), tiny_small=ts, gap=cl - ts),
                         rule="tiny+small <= larger - 0.10", passed=ts <= cl - 0.10),
 "ground_larger": dict(value=mean("ground_larger", "acc50"), rule="ACC@0.5 >= 0.50", passed=mean("ground_larger", "acc50") >= 0.50),
 "proxy_val_miou": dict(value=mean("proxy_val", "iou"), rule="0.08 <= mIoU <= 0.25", passed=0.08 <= mean("proxy_val", "iou") <= 0.25),
 "answer_balance": dict(value=dict(colour_top=col_top, colour_share=col_share, shape_top=shp_top, shape_share=shp_share),
                        rule="colour <= 0.15, shape <= 0.25", passed=col_share <= 1.5 / len(COLORS) and shp_share <= 1.5 / len(SHAPES)),
 "grpo_step0_parse": dict(value=parse, rule=">= 0.95", passed=parse >= 0.95),
 "grpo_step0_spread": dict(value=zero, rule="zero-spread groups <= 0.30", passed=zero <= 0.30),
}
p_base = mean("primary", "correct")
rows = [pretrain_example(s, i, 1.0) for s in range(100) for i in range(32)]
data = {k: dict(answer_balance(rows, k), passed=answer_balance(rows, k)["ratio"] <= 1.5) for k in KINDS}
result = dict(
  passed=all(g["passed"] for g in gate.values()), gate=gate,
  detail=dict(proxy_val_acc50=mean("proxy_val", "acc50"), proxy_val_parsed=mean("proxy_val", "parsed"),
              proxy_val_miou_tiny=float(np.mean([r["iou"] for r in scores["proxy_val"] if r["bucket"] == "tiny"])),
              proxy_val_miou_small=float(np.mean([r["iou"] for r in scores["proxy_val"] if r["bucket"] == "small"])),
              ground_miou=dict(tiny=mean("ground_tiny", "iou"), small=mean("ground_small", "iou"), larger=mean("ground_larger", "iou")),
              ground_acc50=dict(tiny=mean("ground_tiny", "acc50"), small=mean("ground_small", "acc50"), larger=mean("ground_larger", "acc50")),
              ground_larger_distinct_boxes=len({r["pred"] for r in scores["ground_larger"]}),
              shape_accuracy=mean("shape", "correct"), format_rate=float(np.mean([r["format"] for s in scores.values() for r in s])),
              grpo_step0_reward_mean=rmean, grpo_step0_within_group_std=std),
  primary_base=dict(accuracy=p_base, n=len(scores["primary"]), tiny=float(np.mean([r["correct"] for r in scores["primary"] if r["bucket"] == "tiny"])),
                    small=float(np.mean([r["correct"] for r in scores["primary"] if r["bucket"] == "small"])), larger=mean("primary_larger", "correct")),
  power=dict(p=p_base, per_item_variance=p_base * (1 - p_base), mde=mde(p_base), mde_rho0=mde(p_base, rho=0.0), mde_seed_sd_3pt=mde(p_base, seed_sd=0.03),
             assumptions="800 items x 3 seeds per condition, seed SD 1.5 points, within-item correlation 0.5 (mde_rho0: 0; mde_seed_sd_3pt: seed SD 3 points)"),
  data_balance=data, seconds=round(time.time() - t0, 1))
json.dump(result, open(os.path.join(a.out, "gate.json"), "w"), indent=1)
print(json.dumps({k: (v["value"], v["passed"]) for k, v in gate.items()}, indent=0), f"\n{time.time() - t0:.0f}s")
