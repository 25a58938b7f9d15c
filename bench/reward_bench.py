"""Reward throughput: score N mixed completions with `locus.reward.locus_reward` and, in the same process, with the
naive regex reward of `nbs/01_reward.ipynb` (exceptions caught) as a baseline. Prints a markdown table.

    python bench/reward_bench.py [--n 100000] [--seed 0]
"""
import argparse, platform, random, re, time, os
from locus.reward import locus_reward, parse_box, iou_reward, format_reward

def naive_iou(a, b):
    iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

def naive_reward(completions, solution, **kw):
    out = []
    for c, s in zip(completions, solution):
        try:
            m = re.search(r"<answer>\[(\d+), (\d+), (\d+), (\d+)\]</answer>", c)
            out.append(0.9 * naive_iou([int(v) for v in m.groups()], s) + 0.1 * ("<think>" in c))
        except Exception: out.append(0.0)
    return out

WORDS = "the red sign is small and lies left of the door below a window so I look at that region carefully".split()

def make_completions(n, seed):
    rng = random.Random(seed)
    comps, sols = [], []
    for _ in range(n):
        x1, y1 = rng.randint(0, 900), rng.randint(0, 700)
        t = [x1, y1, x1 + rng.randint(8, 120), y1 + rng.randint(8, 120)]
        p = [v + rng.randint(-10, 10) for v in t]
        think = " ".join(rng.choices(WORDS, k=rng.randint(10, 80)))    # ~60-480 characters of reasoning
        kind = rng.random()
        if kind < 0.6: c = f"<think>{think}</think><answer>[{p[0]}, {p[1]}, {p[2]}, {p[3]}]</answer>"
        elif kind < 0.75: c = f'<think>{think}</think><answer>```json\n[{{"bbox_2d": {p}, "label": "sign"}}]\n```</answer>'
        elif kind < 0.85: c = f"<think>{think}</think><answer>[{p[0]}.5,{p[1]},{p[2]},{p[3]}.25]</answer>"
        elif kind < 0.95: c = f"<think>{think} at [{p[0]}, {p[1]}"       # truncated mid-answer
        else: c = f"{think} ({p[0]},{p[1]}),({p[2]},{p[3]})"
        comps.append(c); sols.append(t)
    return comps, sols

def bench(fn, comps, sols, conv=False, repeat=3):
    if conv: comps = [[{"role": "assistant", "content": c}] for c in comps]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter(); fn(comps, solution=sols); best = min(best, time.perf_counter() - t)
    return len(comps) / best

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="number of completions to score")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated completions")
    a = ap.parse_args()
    comps, sols = make_completions(a.n, a.seed)
    parsed = sum(parse_box(c) is not None for c in comps) / len(comps)
    rows = [("naive regex reward (baseline, crashes caught)", bench(naive_reward, comps, sols)),
            ("locus_reward, string completions", bench(locus_reward, comps, sols)),
            ("locus_reward, conversational completions", bench(locus_reward, comps, sols, conv=True)),
            ("iou_reward alone", bench(iou_reward, comps, sols)),
            ("format_reward alone", bench(format_reward, comps, sols))]
    base = rows[0][1]
    print(f"{a.n:,} completions ({parsed:.0%} with a parseable box), best of 3, one process; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| reward | completions/s | vs baseline |\n|---|---:|---:|")
    for name, r in rows: print(f"| {name} | {r:,.0f} | {r / base:.2f}x |")
