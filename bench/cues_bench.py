"""Benchmark: cue sampling rate on ~1 MP real photos with the flat/ambiguity checks on and off, and proxy data-set build time.

Usage: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python bench/cues_bench.py [--n-build 300] [--target 10000]
One process, so the on/off ratios compare like with like; settings are interleaved image by image (sampling) or
build by build, twice, keeping the faster run (builds), so that load from other processes on a shared machine
biases no setting. Builds are measured for --n-build cues and extrapolated linearly to --target cues: the cost per
cue is flat (each image is loaded, resized, checked and encoded on its own)."""
import argparse, os, platform, tempfile, time
from dataclasses import replace
from pathlib import Path
import numpy as np
from PIL import Image
import skimage.data
from locus.cues import CueConfig, PRESETS, sample_cues, to_rgb
from locus.data import FolderSource, ProxyConfig, SyntheticSource, build_proxy_dataset

PHOTOS = ["astronaut", "coffee", "rocket", "chelsea", "hubble_deep_field", "retina", "stereo_motorcycle", "immunohistochemistry"]

def to_1mp(im: Image.Image) -> Image.Image:
    s = (1e6 / (im.width * im.height)) ** 0.5
    return im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)

def photos_1mp() -> dict:
    "The bundled real photos, each resized (bicubic, aspect kept) to about one megapixel."
    out = {}
    for n in PHOTOS:
        a = getattr(skimage.data, n)(); a = a[0] if isinstance(a, tuple) else a
        out[n] = to_1mp(to_rgb(a))
    return out

def photo_folder(root: Path, photos: dict, n: int) -> Path:
    "n distinct ~1 MP JPEGs made from the real photos: a random 70-100% crop of each, maybe mirrored, resized to 1 MP."
    rng = np.random.default_rng(0)
    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]; im = photos[name]; f = rng.uniform(0.7, 1.0)
        w, h = int(im.width * f), int(im.height * f); x, y = int(rng.integers(0, im.width - w + 1)), int(rng.integers(0, im.height - h + 1))
        c = im.crop((x, y, x + w, y + h))
        if rng.random() < 0.5: c = c.transpose(Image.FLIP_LEFT_RIGHT)
        to_1mp(c).save(root / f"{i:05d}_{name}.jpg", quality=90)
    return root

def sampling(photos, n_per_image, reps):
    "Per setting: (cues/s, ms per accepted cue, share of draws rejected); settings interleaved image by image."
    rnd = PRESETS["random"]
    settings = {"checks off": replace(rnd, reject_flat=False, reject_ambiguous=False), "flat check only": replace(rnd, reject_ambiguous=False),
                "flat + ambiguity (default)": rnd}
    t, got, rej = dict.fromkeys(settings, 0.0), dict.fromkeys(settings, 0), dict.fromkeys(settings, 0)
    for r in range(reps):
        for name, im in photos.items():
            for k, cfg in settings.items():
                t0 = time.perf_counter(); cs = sample_cues(im, n=n_per_image, config=cfg, seed=r, source=name); t[k] += time.perf_counter() - t0
                got[k] += len(cs); rej[k] += cs.rejected.get("flat", 0) + cs.rejected.get("ambiguous", 0)
    return {k: (got[k] / t[k], 1000 * t[k] / got[k], rej[k] / (got[k] + rej[k])) for k in settings}

def build_time(src, cfg, num_proc=1, repeats=2):
    "Seconds per cue of a fresh build (best of `repeats`), and the build's report."
    best = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter(); dd = build_proxy_dataset(src, cfg, cache_dir=d, progress=False, num_proc=num_proc); dt = time.perf_counter() - t0
        n = sum(dd.report["rows"].values())
        if best is None or dt / n < best[0]: best = (dt / n, n, dd.report)
    return best

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-build", type=int, default=300, help="cues actually built per measurement")
    ap.add_argument("--target", type=int, default=10_000, help="cues to extrapolate the build time to")
    ap.add_argument("--reps", type=int, default=3, help="passes over the photos per sampling measurement")
    args = ap.parse_args()
    photos = photos_1mp()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs), no GPU; python {platform.python_version()}, numpy {np.__version__}")
    print(f"photos: {len(photos)} bundled scikit-image photos resized to ~1 MP ({', '.join(f'{im.width}x{im.height}' for im in photos.values())})\n")
    print("1. Cue sampling, random-crop mode (tiny:small 70:30); one call = one image, so per-image setup is included")
    print(f"{'cues/image':>10s}  {'setting':28s} {'cues/s':>8s} {'ms/cue':>8s} {'rejected':>9s} {'time vs off':>12s}")
    for n in (2, 8):
        res = sampling(photos, n, args.reps); off = res["checks off"][1]
        for k, (cps, ms, rj) in res.items(): print(f"{n:10d}  {k:28s} {cps:8.1f} {ms:8.2f} {rj:9.1%} {ms / off:11.1f}x")
    print("(rejected: share of drawn crops turned down; their checks are in the time, the rate counts accepted cues)\n")

    n_val = max(1, args.n_build // 20)
    with tempfile.TemporaryDirectory() as pdir:
        folder = FolderSource(photo_folder(Path(pdir), photos, args.n_build))
        syn = SyntheticSource(10 * args.n_build, seed=0, canvas=(1155, 866), n_objects=12)
        t0 = time.perf_counter(); [syn.scene(i) for i in range(20)]; gen_ms = 1000 * (time.perf_counter() - t0) / 20
        print(f"2. Proxy data-set build, default budget (max 1,003,520 px), cues_per_image=2, best of 2;")
        print(f"   {args.n_build} cues built, extrapolated to {args.target:,}")
        print(f"{'source':36s} {'format':>6s} {'checks':>6s} {'procs':>5s} {'ms/cue':>7s} {'min per ' + format(args.target, ','):>15s}")
        rows = {}
        runs = [("1 MP real-photo JPEGs, random crops", folder, PRESETS["random"], [("jpeg", True, 1), ("jpeg", False, 1), ("png", True, 1), ("jpeg", True, 2)]),
                ("1 MP synthetic scenes, object boxes", syn, CueConfig(), [("jpeg", True, 1), ("jpeg", False, 1)])]
        for label, src, cue, settings in runs:
            for fmt, checks, procs in settings:
                c = cue if checks else replace(cue, reject_flat=False, reject_ambiguous=False)
                spc, n, rep = build_time(src, ProxyConfig(n_train=args.n_build - n_val, n_val=n_val, image_format=fmt, cue=c), num_proc=procs)
                rows[label, fmt, checks, procs] = spc
                print(f"{label:36s} {fmt:>6s} {'on' if checks else 'off':>6s} {procs:5d} {1000 * spc:7.1f} {spc * args.target / 60:15.1f}")
        for label, *_ in runs:
            print(f"{label}: checks on / off = {rows[label, 'jpeg', True, 1] / rows[label, 'jpeg', False, 1]:.2f}x the build time")
        print(f"(generating one synthetic 1 MP scene takes {gen_ms:.0f} ms, i.e. ~{gen_ms / 2:.0f} ms per cue of the synthetic rows)")

if __name__ == "__main__":
    main()
