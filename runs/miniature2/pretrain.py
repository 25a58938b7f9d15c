"""Pretrain the micro Qwen2.5-VL of nbs/09_microworld_base.ipynb on one CPU thread, in two stages; resumable (rerun the same command).

    OMP_NUM_THREADS=1 nohup .venv/bin/python runs/miniature2/pretrain.py > runs/miniature2/logs/pretrain.log 2>&1 &
    .venv/bin/python runs/miniature2/pretrain.py --out /tmp/smoke --vision_steps 20 --minutes 2 --log_every 10    # a smoke run

Stage 0 (`pretrain_vision`, a fixed number of steps) teaches the vision tower to see: each object's pooled visual tokens name
its shape and colour and give its box. Stage 1 (`pretrain`) is supervised next-token training of the whole model on the
pretraining mix, starting from stage 0's weights. Its learning-rate schedule and object curriculum run on wall time
(`--minutes`), not on a step count: on a shared CPU the step rate is not known in advance, and the run must end within its
budget either way.
"""
import argparse, os, time
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("HF_HUB_OFFLINE", "1")
from pathlib import Path
import torch
torch.set_num_threads(1)
from locus.microbase import pretrain, pretrain_vision

p = argparse.ArgumentParser()
p.add_argument("--out", default="runs/miniature2", help="run folder: vision/ (stage 0), ckpt/ (stage 1 resume state) and base/ (the model)")
p.add_argument("--vision_steps", type=int, default=1200, help="stage 0: steps of 32 scenes")
p.add_argument("--minutes", type=float, default=55.0, help="stage 1: wall-time budget, over resumes")
p.add_argument("--max_steps", type=int, default=6000, help="stage 1: or stop at this many steps of 32 rows")
p.add_argument("--log_every", type=int, default=25)
p.add_argument("--align", action="store_true", help="stage 0 names shapes and colours by similarity to their word embeddings")
a = p.parse_args()
t = time.time(); vision = Path(a.out) / "vision" / "model.safetensors"
if not vision.exists():
    pretrain_vision(a.out, steps=a.vision_steps, log_every=a.log_every, align=a.align)
    print(f"stage 0 done in {(time.time() - t) / 60:.1f} min", flush=True)
pretrain(a.out, minutes=a.minutes, max_steps=a.max_steps, log_every=a.log_every, init=vision)
print(f"done in {(time.time() - t) / 60:.1f} min", flush=True)
