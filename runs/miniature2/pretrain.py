"""Pretrain the micro Qwen2.5-VL of nbs/09_microworld.ipynb on one CPU thread; resumable (rerun the same command).

    OMP_NUM_THREADS=1 nohup .venv/bin/python runs/miniature2/pretrain.py > runs/miniature2/logs/pretrain.log 2>&1 &
    .venv/bin/python runs/miniature2/pretrain.py --out /tmp/smoke --minutes 2 --log_every 10    # the 2-minute smoke run

The learning-rate schedule and the object curriculum run on wall time (`--minutes`), not on a step count: on a shared
CPU the step rate is not known in advance, and the run must end within its budget either way.
"""
import argparse, os, time
os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
torch.set_num_threads(1)
from locus.microworld import pretrain

p = argparse.ArgumentParser()
p.add_argument("--out", default="runs/miniature2", help="run folder: ckpt/ (resume state) and base/ (the model)")
p.add_argument("--minutes", type=float, default=40.0, help="wall-time budget of the run, over resumes")
p.add_argument("--max_steps", type=int, default=4000, help="or stop at this many steps of 32 rows")
p.add_argument("--log_every", type=int, default=25)
a = p.parse_args()
t = time.time()
pretrain(a.out, minutes=a.minutes, max_steps=a.max_steps, log_every=a.log_every)
print(f"done in {(time.time() - t) / 60:.1f} min", flush=True)
