"""Probe: does per-token (dense) stage-0 supervision buy binding? Stage 0 as `pretrain_vision(align=True)` plus, for every visual
token, the shape and colour of the object that covers most of it (or 'background') by similarity to the word embeddings, and that
object's box; then the binding probe of binding.py (colour questions about 3-object scenes, whole model, lr 1e-3).

    .venv/bin/python runs/miniature2/probes/dense.py OUT STAGE0_STEPS PROBE_STEPS
"""
import os, sys, time, json, math
os.environ["OMP_NUM_THREADS"] = "1"; os.environ["HF_HUB_OFFLINE"] = "1"
import torch, numpy as np
torch.set_num_threads(1)
from PIL import Image, ImageDraw
from locus.microworld import micro_model, make_example, sft_batch, SHAPES, COLORS, CANVAS, draw_shape
from locus.microbase import object_cover, vision_scene, lr_at
F = torch.nn.functional
out, steps, probe_steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)

def token_owner(scene, cell=28):
    "index of the object covering most of each token's pixels, -1 where no object covers >= 5% of it"
    lab = Image.new("L", (CANVAS, CANVAS), 0); d = ImageDraw.Draw(lab)
    for k, o in enumerate(scene.objects): draw_shape(d, o.shape, o.box, k + 1)
    g = CANVAS // cell; a = torch.from_numpy(np.asarray(lab).astype(np.int64))
    n = F.one_hot(a, len(scene.objects) + 1)[..., 1:].reshape(g, cell, g, cell, -1).sum((1, 3)).reshape(g * g, -1)
    own = n.argmax(1); own[n.max(1).values < 0.05 * cell * cell] = -1
    return own

model, proc = micro_model(0); vis = model.model.visual; vis.train()
emb, words = model.get_input_embeddings(), torch.tensor(proc.tokenizer.convert_tokens_to_ids([*SHAPES, *COLORS]))
bg = torch.nn.Parameter(torch.randn(2, 128) * 0.02)     # 'background' directions for shape and colour
box_head = torch.nn.Linear(128, 4); scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
params = list(vis.parameters()) + list(box_head.parameters()) + [scale, bg]
opt = torch.optim.AdamW([dict(params=params), dict(params=[emb.weight], weight_decay=0.0)], lr=2e-3, betas=(0.9, 0.98), weight_decay=0.01)
ip = proc.image_processor; acc = []; t0 = time.time(); nS = len(SHAPES)
for step in range(steps):
    for g in opt.param_groups: g["lr"] = lr_at(step / steps, 2e-3)
    scs = [vision_scene(step, i, step / steps, 32) for i in range(32)]
    b = ip(images=[s.image for s in scs], return_tensors="pt")
    tok = vis(b["pixel_values"], grid_thw=b["image_grid_thw"]).pooler_output.reshape(32, 36, -1)
    W = F.normalize(emb.weight[words], dim=-1); nt = F.normalize(tok.reshape(-1, 128), dim=-1)
    Ws = torch.cat([W[:nS], F.normalize(bg[:1], dim=-1)]); Wc = torch.cat([W[nS:], F.normalize(bg[1:], dim=-1)])
    ls, lc = nt @ Ws.T * scale.exp(), nt @ Wc.T * scale.exp()
    own = [token_owner(s) for s in scs]
    ys = torch.cat([torch.tensor([SHAPES.index(s.objects[k].shape) if k >= 0 else nS for k in o]) for s, o in zip(scs, own)])
    yc = torch.cat([torch.tensor([list(COLORS).index(s.objects[k].color) if k >= 0 else len(COLORS) for k in o]) for s, o in zip(scs, own)])
    yb = torch.cat([torch.tensor([s.objects[k].box if k >= 0 else (0, 0, 0, 0) for k in o], dtype=torch.float32) for s, o in zip(scs, own)]) / CANVAS
    m = ys < nS
    pooled = torch.cat([object_cover(s).T @ t for s, t in zip(scs, tok)]); pn = F.normalize(pooled, dim=-1)
    ps, pc = pn @ W[:nS].T * scale.exp(), pn @ W[nS:].T * scale.exp()
    pys = torch.tensor([SHAPES.index(o.shape) for s in scs for o in s.objects]); pyc = torch.tensor([list(COLORS).index(o.color) for s in scs for o in s.objects])
    loss = F.cross_entropy(ls, ys) + F.cross_entropy(lc, yc) + 10 * F.l1_loss(box_head(tok.reshape(-1, 128))[m], yb[m]) \
         + F.cross_entropy(ps, pys) + F.cross_entropy(pc, pyc)
    loss.backward(); torch.nn.utils.clip_grad_norm_(params + [emb.weight], 1.0); opt.step(); opt.zero_grad(set_to_none=True)
    acc.append((loss.item(), (ls.argmax(1)[m] == ys[m]).float().mean().item(), (lc.argmax(1)[m] == yc[m]).float().mean().item(),
                (ps.argmax(1) == pys).float().mean().item()))
    if (step + 1) % 25 == 0:
        print("s0", step + 1, *np.round(np.mean(acc, 0), 3), round(time.time() - t0), flush=True); acc = []
from safetensors.torch import save_file
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/model.safetensors")
# the binding probe, as binding.py
model.train(); opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01); acc = []; t0 = time.time()
for step in range(probe_steps):
    opt.param_groups[0]["lr"] = 1e-3 * min(1, (step + 1) / 20)
    exs = [make_example(3_000_000 + step * 32 + i, "colour", n_objects=3) for i in range(32)]
    b = sft_batch(proc, exs); logits = model(**{k: v for k, v in b.items() if k != "labels"}).logits[:, :-1]
    lab = b["labels"][:, 1:]; ce = F.cross_entropy(logits.transpose(1, 2), lab, reduction="none"); m = lab != -100
    ((ce * m).sum(1) / m.sum(1)).mean().backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad()
    acc.append(float((ce * m).max(1).values.mean().detach()))
    if (step + 1) % 25 == 0: print("probe", step + 1, round(np.mean(acc), 3), round(time.time() - t0), flush=True); acc = []
