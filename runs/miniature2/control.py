"""The two controls of the micro-world LOCUS comparison (runs/miniature2/plan.json), from the same base as LOCUS:

    sft: supervised next-token training on exactly the proxy prompts LOCUS trains on, target <think></think><answer>[true box]</answer>
    cpt: continued pretraining on the pretraining mix (locus.microbase.MIX)

Both: full fine-tuning of every parameter, 8 rows a step for as many optimiser steps as LOCUS (200), AdamW at LOCUS's rate,
constant after a 10-step linear warm-up (configs/microworld.yaml). The model is saved like a `locus train` output (safetensors).

    OMP_NUM_THREADS=1 .venv/bin/python runs/miniature2/control.py sft --seed 0      # -> runs/miniature2/sft-s0
"""
import argparse, json, os, time
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
torch.set_num_threads(1)
import yaml
from locus.microworld import SPLITS, eval_set
from locus.microbase import pretrain_example, row_losses
from locus.testing import load_pretrained_vlm, save_pretrained_vlm

p = argparse.ArgumentParser()
p.add_argument("condition", choices=("sft", "cpt"))
p.add_argument("--seed", type=int, default=0)
p.add_argument("--config", default="configs/microworld.yaml", help="LOCUS's run settings: model, steps, prompts per step, lr, warm-up")
p.add_argument("--out", default=None, help="default: runs/miniature2/<condition>-s<seed>")
p.add_argument("--max_steps", type=int, default=0, help="0: the config's")
p.add_argument("--model", default=None, help="the base (default: the config's model)")
a = p.parse_args()
cfg = yaml.safe_load(open(a.config)); cfg["model"] = a.model or cfg["model"]
steps = a.max_steps or cfg["max_steps"]; rows = cfg["per_device_train_batch_size"] // cfg["num_generations"]
out = a.out or f"runs/miniature2/{a.condition}-s{a.seed}"; os.makedirs(out, exist_ok=True)
torch.manual_seed(a.seed); rng = np.random.default_rng(a.seed)
model, proc = load_pretrained_vlm(cfg["model"]); model.train()
opt = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], betas=(0.9, 0.999), weight_decay=0.01)   # as `locus train`: AdamW, weight decay 0.01
if a.condition == "sft":   # LOCUS's training rows (the same call as `locus train`'s source 'microworld'), in a seeded random order
    mix = dict(q.split("=") for q in cfg["mix"].split(",")); mix = {k: float(v) for k, v in mix.items()}
    pool = eval_set("proxy", cfg["n_train"], SPLITS["train"] + 5_000_000, cues=mix)
    order = rng.permutation(len(pool))
    batch = lambda s: [pool[int(order[(s * rows + i) % len(pool)])] for i in range(rows)]
else:                      # the pretraining mix on scenes pretraining never drew (its steps x 32 rows stay below seed 400,000)
    batch = lambda s: [pretrain_example(50_000 + a.seed * 10_000 + s, i, 1.0, batch_size=rows) for i in range(rows)]
log, t0 = [], time.time()
for s in range(steps):
    for g in opt.param_groups: g["lr"] = cfg["learning_rate"] * min(1.0, (s + 1) / (cfg["warmup_steps"] + 1))
    loss = row_losses(model, proc, batch(s)).mean(); loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True)
    log.append(dict(step=s + 1, loss=round(loss.item(), 4), grad_norm=round(float(gn), 4), lr=opt.param_groups[0]["lr"], seconds=round(time.time() - t0, 1)))
    if (s + 1) % 20 == 0: print(json.dumps(log[-1]), flush=True)
model.eval(); save_pretrained_vlm(model, proc, out)
json.dump(dict(condition=a.condition, seed=a.seed, steps=steps, rows_per_step=rows, log=log), open(os.path.join(out, "log.json"), "w"))
print(f"{a.condition} seed {a.seed}: {steps} steps in {(time.time() - t0) / 60:.1f} min", flush=True)
