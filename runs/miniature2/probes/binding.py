"""Probe: from candidate B's stage-0 weights, train the whole model on colour questions about 3-object scenes only (300 steps of 32, lr 1e-3)
with a given text M-RoPE, printing every 25 steps the mean over rows of the largest per-token cross-entropy of the completion (the answer token's) (chance ln 10 = 2.30; knowing the
three colours present but not which object is named: ln 3 = 1.10).
Stage 0 weights: runs/miniature2/b/vision/model.safetensors, written by `pretrain.py --out runs/miniature2/b --align` (not committed).

    .venv/bin/python runs/miniature2/probes/binding.py 0,4,12 1000 300    # mrope_section, rope_theta, steps
"""
import os, sys, time, json
os.environ["OMP_NUM_THREADS"]="1"; os.environ["HF_HUB_OFFLINE"]="1"
import torch, numpy as np
torch.set_num_threads(1)
from safetensors.torch import load_file
from locus.microworld import micro_model, MicroConfig, make_example, sft_batch
sec = tuple(int(x) for x in sys.argv[1].split(",")); theta = float(sys.argv[2]); steps = int(sys.argv[3])
model, proc = micro_model(0, MicroConfig(rope_theta=theta, mrope_section=sec))
init = os.environ.get("INIT_FROM", "runs/miniature2/b/vision/model.safetensors")
w = load_file(init); model.load_state_dict(w)   # stage 0 weights (vision + aligned words)
if os.environ.get("TIE_QK"):   # every text attention starts as a similarity search: each head's key projection = its query projection
    t = model.config.text_config; hd = t.hidden_size // t.num_attention_heads; g = t.num_attention_heads // t.num_key_value_heads
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            a = layer.self_attn
            for h in range(t.num_attention_heads): a.q_proj.weight[h * hd:(h + 1) * hd] = a.k_proj.weight[(h // g) * hd:(h // g + 1) * hd]
model.train(); opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
acc = []; t0 = time.time()
for step in range(steps):
    g = opt.param_groups[0]; g["lr"] = 1e-3 * min(1, (step + 1) / 20)
    exs = [make_example(3_000_000 + step * 32 + i, "colour", n_objects=3) for i in range(32)]
    b = sft_batch(proc, exs); logits = model(**{k: v for k, v in b.items() if k != "labels"}).logits[:, :-1]
    lab = b["labels"][:, 1:]; ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), lab, reduction="none"); m = lab != -100
    ((ce * m).sum(1) / m.sum(1)).mean().backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad()
    acc.append(float((ce * m).max(1).values.mean().detach()))
    if (step + 1) % 25 == 0: print(step + 1, round(np.mean(acc), 3), round(time.time() - t0), flush=True); acc = []
