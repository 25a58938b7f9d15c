"""Probe: many questions per scene (as associative-recall training asks many keys per sequence). From candidate B's stage-0 weights,
the whole model trains on 3-object scenes where one image is followed by a colour question about each object whose shape is unique
in the scene (the target first), one chat turn each; the loss is on every answer's colour token. Prints the first question's
answer-token CE (the single-question format of the gate), comparable to binding.py's.

    .venv/bin/python runs/miniature2/probes/binding_multi.py STEPS [N_OBJECTS] [INIT]
"""
import os, sys, time
os.environ["OMP_NUM_THREADS"] = "1"; os.environ["HF_HUB_OFFLINE"] = "1"
import torch, numpy as np
torch.set_num_threads(1)
from safetensors.torch import load_file
from locus.microworld import micro_model, make_example, make_scene, chat_prompt, ANSWER, PROMPTS, SUFFIX
F = torch.nn.functional
steps = int(sys.argv[1]); n_obj = int(sys.argv[2]) if len(sys.argv) > 2 else 3
init = sys.argv[3] if len(sys.argv) > 3 else "runs/miniature2/b/vision/model.safetensors"
model, proc = micro_model(0); model.load_state_dict(load_file(init)); model.train(); tok = proc.tokenizer; tok.padding_side = "right"
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01); acc = []; t0 = time.time()
ans_id, think_id = tok.convert_tokens_to_ids(["<answer>", "<think>"])
for step in range(steps):
    opt.param_groups[0]["lr"] = 1e-3 * min(1, (step + 1) / 20)
    exs = [make_example(3_000_000 + step * 32 + i, "colour", n_objects=n_obj) for i in range(32)]
    texts = []
    for e in exs:
        sc = make_scene(e["seed"], n_obj); shapes = [o.shape for o in sc.objects]
        qs = [o for o in sc.objects if shapes.count(o.shape) == 1]
        t = chat_prompt(proc, e) + ANSWER.format(qs[0].color) + "<|im_end|>"
        for o in qs[1:]:
            t += "\n<|im_start|>user\n" + PROMPTS["colour"].format(shape=o.shape) + SUFFIX + "<|im_end|>\n<|im_start|>assistant\n" + ANSWER.format(o.color) + "<|im_end|>"
        texts.append(t)
    b = proc(text=texts, images=[e["images"][0] for e in exs], padding=True, return_tensors="pt")
    ids = b["input_ids"]; lab = torch.full_like(ids, -100)
    pos = ((ids == ans_id) & (ids.roll(2, 1) == think_id)).nonzero()   # each answer's <answer> (the prompt's has ".." after <think>); its colour follows
    lab[pos[:, 0], pos[:, 1] + 1] = ids[pos[:, 0], pos[:, 1] + 1]
    logits = model(**b).logits[:, :-1]; lab = lab[:, 1:]
    ce = F.cross_entropy(logits.transpose(1, 2), lab, reduction="none"); m = lab != -100
    ((ce * m).sum() / m.sum()).backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad()
    first = torch.stack([ce[i][m[i]][0] for i in range(len(exs))])
    acc.append((float(first.mean().detach()), float((ce * m).sum().detach() / m.sum())))
    if (step + 1) % 25 == 0: print(step + 1, *np.round(np.mean(acc, 0), 3), round(time.time() - t0), flush=True); acc = []
