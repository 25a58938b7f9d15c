"""Probe: can the micro language model bind at all? The same colour question, but the scene given as text
("square red circle blue triangle green"), no image; the whole model, lr as binding.py; prints the answer token's CE.

    .venv/bin/python runs/miniature2/probes/text_binding.py STEPS LR
"""
import os, sys, time
os.environ["OMP_NUM_THREADS"] = "1"; os.environ["HF_HUB_OFFLINE"] = "1"
import torch, numpy as np
torch.set_num_threads(1)
from locus.microworld import micro_model, make_scene, ANSWER, PROMPTS, SUFFIX
F = torch.nn.functional
steps, lr = int(sys.argv[1]), float(sys.argv[2])
model, proc = micro_model(0); tok = proc.tokenizer; tok.padding_side = "right"
if os.environ.get("MODEL") == "qwen2":   # the same sizes as a plain text Qwen2 (1-D RoPE): is the micro VLM's text stack the obstacle?
    from transformers import Qwen2Config, Qwen2ForCausalLM
    t = model.config.text_config; torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=t.vocab_size, hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                                        num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
                                        num_key_value_heads=t.num_key_value_heads, rope_parameters={"rope_type": "default", "rope_theta": 1000.0}))
if os.environ.get("INIT"):   # re-initialise every weight matrix of the text stack with this std (Qwen2's default: 0.02)
    std = float(os.environ["INIT"]); torch.manual_seed(0)
    for n, w in model.named_parameters():
        if w.dim() == 2 and "visual" not in n: torch.nn.init.normal_(w, std=std)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01); acc = []; t0 = time.time()
for step in range(steps):
    opt.param_groups[0]["lr"] = lr * min(1, (step + 1) / 20)
    scs = [make_scene(3_000_000 + step * 32 + i, int(os.environ.get("N_OBJ", 3))) for i in range(32)]
    texts, ans = [], []
    for s in scs:
        objs = list(s.objects); np.random.default_rng(s.seed).shuffle(objs)
        desc = " ".join(f"{o.shape} {o.color}" for o in objs)
        msg = [{"role": "user", "content": [{"type": "text", "text": desc + ". " + PROMPTS["colour"].format(shape=s.target.shape, color="") + SUFFIX}]}]
        p = proc.apply_chat_template(msg, add_generation_prompt=True, tokenize=False)
        texts.append(p + ANSWER.format(s.target.color) + "<|im_end|>"); ans.append(ANSWER.format(s.target.color) + "<|im_end|>")
    b = tok(texts, padding=True, return_tensors="pt"); lab = torch.full_like(b["input_ids"], -100)
    for i, a in enumerate(ans):
        n = len(tok(a, add_special_tokens=False)["input_ids"]); L = int(b["attention_mask"][i].sum()); lab[i, L - n:L] = b["input_ids"][i, L - n:L]
    logits = model(**b).logits[:, :-1]; lab = lab[:, 1:]
    ce = F.cross_entropy(logits.transpose(1, 2), lab, reduction="none"); m = lab != -100
    ((ce * m).sum(1) / m.sum(1)).mean().backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad()
    acc.append(float((ce * m).max(1).values.mean().detach()))
    if (step + 1) % 25 == 0: print(step + 1, round(np.mean(acc), 3), round(time.time() - t0), flush=True); acc = []
