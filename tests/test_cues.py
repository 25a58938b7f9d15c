"Tests for locus.cues that a notebook shows poorly: other processes, many seeds, brute-force references, odd inputs."
import json, subprocess, sys
import numpy as np
import pytest
from PIL import Image
import skimage.data
from locus.cues import (CueConfig, PRESETS, SIZE_CLASSES, sample_cues, size_class, to_rgb, cue_rng, _Matcher)
from locus.boxes import box_area

ASTRO = skimage.data.astronaut()
BOXES = [[133, 343, 178, 412], [280, 338, 330, 372], [160, 45, 255, 160], [22, 10, 52, 40], [355, 0, 450, 270], [60, 200, 90, 240]]

def summary(cues):
    import hashlib
    return [dict(box=list(c.box), cls=c.size_class, scale=c.scale, peak=c.second_peak, src=c.source, seed=c.seed,
                 px=hashlib.sha256(c.pixels.tobytes()).hexdigest()) for c in cues]

SCRIPT = """
import json, hashlib, skimage.data
from locus.cues import sample_cues, PRESETS
a = skimage.data.astronaut()
out = {}
for mode, boxes in [("boxes", %r), ("random", None)]:
    cfg = PRESETS["paper"] if mode == "boxes" else PRESETS["random"]
    cs = sample_cues(a, boxes, n=5, config=cfg, seed=7, source="astronaut.png")
    out[mode] = [dict(box=list(c.box), cls=c.size_class, scale=c.scale, peak=c.second_peak, src=c.source, seed=c.seed,
                      px=hashlib.sha256(c.pixels.tobytes()).hexdigest()) for c in cs]
print(json.dumps(out))
""" % (BOXES,)

def test_same_cues_in_another_process():
    here = {"boxes": summary(sample_cues(ASTRO, BOXES, n=5, seed=7, source="astronaut.png")),
            "random": summary(sample_cues(ASTRO, n=5, config=PRESETS["random"], seed=7, source="astronaut.png"))}
    # PYTHONHASHSEED differs on purpose: nothing may depend on Python's salted hash()
    env = {**__import__("os").environ, "PYTHONHASHSEED": "12345"}
    there = json.loads(subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, env=env).stdout)
    assert here == there and len(here["boxes"]) >= 3 and len(here["random"]) == 5

def test_seed_and_source_change_the_cues():
    a = summary(sample_cues(ASTRO, n=5, config=PRESETS["random"], seed=0, source="x"))
    assert a != summary(sample_cues(ASTRO, n=5, config=PRESETS["random"], seed=1, source="x"))
    assert a != summary(sample_cues(ASTRO, n=5, config=PRESETS["random"], seed=0, source="y"))

@pytest.mark.parametrize("seed", range(6))
def test_exact_pixels_and_fields(seed):
    img = skimage.data.coffee()
    for cfg, boxes in [(PRESETS["random"], None), (CueConfig(), [[320, 225, 400, 315], [195, 235, 262, 300], [100.4, 20.7, 130.2, 55.9]])]:
        cues = sample_cues(img, boxes, n=4, config=cfg, seed=seed, source="coffee")
        for c in cues:
            x1, y1, x2, y2 = c.box
            assert all(isinstance(v, int) for v in c.box)
            np.testing.assert_array_equal(c.pixels, img[y1:y2, x1:x2])
            assert min(x2 - x1, y2 - y1) >= 16 and c.size_class == size_class(box_area(c.box) / (600 * 400))
            assert c.size_class in cfg.mix and (c.source, c.seed, c.image_size) == ("coffee", seed, (600, 400))
            w, h = c.image().size
            assert (w, h) == (round((x2 - x1) * c.scale), round((y2 - y1) * c.scale)) and min(w, h) >= 16
            if c.size_class == "tiny": assert 0.8 <= c.scale <= 2.0 or min(x2 - x1, y2 - y1) * 0.8 < 16
            else: assert c.scale == 1.0
            if c.object_box is not None:              # padding only grows the (snapped) object box
                ob = c.object_box
                assert x1 <= ob[0] and y1 <= ob[1] and x2 >= ob[2] and y2 >= ob[3]

def test_padding_is_within_ten_percent():
    img = skimage.data.astronaut(); b = [280, 338, 330, 372]          # tiny: 50 x 34
    for seed in range(30):
        (c,) = sample_cues(img, [b], n=1, seed=seed, source="a", config=CueConfig(reject_ambiguous=False))
        x1, y1, x2, y2 = c.box
        assert b[0] - x1 <= 0.1 * 50 + 1 and x2 - b[2] <= 0.1 * 50 + 1 and b[1] - y1 <= 0.1 * 34 + 1 and y2 - b[3] <= 0.1 * 34 + 1

def test_mix_and_presets():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)        # noise: every crop informative and unique
    boxes = []
    for frac in list(np.linspace(0.001, 0.009, 30)) + list(np.linspace(0.012, 0.045, 30)) + list(np.linspace(0.12, 0.3, 5)):
        s = int((frac * 480000) ** 0.5); x, y = rng.integers(0, 800 - s), rng.integers(0, 600 - s); boxes.append([x, y, x + s, y + s])
    got = {k: [c.size_class for c in sample_cues(img, boxes, n=20, config=PRESETS[k], seed=1, source="noise")] for k in ("paper", "tiny_only", "large")}
    assert set(got["paper"]) == {"tiny", "small"} and 10 <= got["paper"].count("tiny") <= 19
    assert set(got["tiny_only"]) == {"tiny"} and set(got["large"]) == {"large"} and len(got["large"]) == 5
    rand = sample_cues(img, n=200, config=CueConfig(mode="random", mix={"tiny": 0.5, "small": 0.5}), seed=2, source="noise")
    assert len(rand) == 200 and 70 <= sum(c.size_class == "tiny" for c in rand) <= 130

def test_bad_boxes_are_counted_not_crashed():
    boxes = [[-50, -50, -1, -1], [10, 10, 10, 50], [0, 0, float("nan"), 5], [5, 5, 12, 12], [0, 0, 500, 20], ["a", 1, 2, 3], [1, 2, 3],
             [480, 480, 530, 530]]                    # the last is half outside: clipped to 32 x 32 and kept
    cues = sample_cues(ASTRO, boxes, n=3, seed=0, source="astro")
    assert [c.object_box for c in cues] == [(480, 480, 512, 512)] and cues[0].box[2:] == (512, 512)   # clipped, then padded
    assert dict(cues.rejected) == {"outside_image": 1, "invalid_box": 4, "below_min_side": 1, "aspect": 1, "out_of_boxes": 1}

def test_no_usable_box_and_tiny_image():
    assert dict(sample_cues(ASTRO, [], n=2, source="a").rejected) == {"no_usable_box": 1}
    tiny = sample_cues(np.zeros((8, 8, 3), np.uint8), [[0, 0, 8, 8]], source="t")
    assert len(tiny) == 0 and dict(tiny.rejected) == {"image_too_small": 1}
    with pytest.raises(ValueError, match="needs object boxes"): sample_cues(ASTRO, None, source="a")

def test_flat_and_repeated_content_rejected():
    flat = np.full((300, 400, 3), 128, np.uint8)
    r = sample_cues(flat, n=5, config=PRESETS["random"], source="flat")
    assert len(r) == 0 and r.rejected["flat"] == 100 and r.rejected["out_of_tries"] == 1
    tile = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    wall = np.tile(tile, (8, 10, 1))                 # 320 x 400 wallpaper: every 40-px patch appears 80 times
    boxes = [[x, y, x + 30, y + 30] for x in range(0, 360, 40) for y in range(0, 280, 40)]
    r = sample_cues(wall, boxes, n=5, config=CueConfig(mix={"tiny": 1.0}), source="wall")
    assert len(r) == 0 and r.rejected["ambiguous"] == len(boxes)
    noise = np.random.default_rng(1).integers(0, 256, (320, 400, 3), dtype=np.uint8)
    r = sample_cues(noise, boxes, n=5, config=CueConfig(mix={"tiny": 1.0}), source="noise")
    assert len(r) == 5 and not r.rejected.get("ambiguous") and all(c.second_peak < 0.5 for c in r)

def test_second_peak_matches_brute_force():
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)).resize((140, 120))   # smooth-ish texture
    a = np.asarray(img.convert("L"), dtype=np.float64)
    for box in [(10, 20, 26, 38), (50, 60, 70, 76), (0, 0, 16, 16), (120, 100, 140, 120)]:
        x1, y1, x2, y2 = box; h, w = y2 - y1, x2 - x1
        t = a[y1:y2, x1:x2] - a[y1:y2, x1:x2].mean()
        best = -1.0
        for i in range(a.shape[0] - h + 1):
            for j in range(a.shape[1] - w + 1):
                if abs(i - y1) <= h // 2 and abs(j - x1) <= w // 2: continue
                win = a[i:i + h, j:j + w] - a[i:i + h, j:j + w].mean()
                d = np.sqrt((win ** 2).sum() * (t ** 2).sum())
                if d > 0: best = max(best, float((win * t).sum() / d))
        assert abs(_Matcher(img).second_peak(box, match_side=10 ** 6) - best) < 1e-6

def test_to_rgb_modes():
    base = Image.fromarray(skimage.data.coffee())
    for im in [base.convert("L"), base.convert("RGBA"), base.convert("CMYK"), base.convert("P"), base.convert("1"), base.convert("LA"),
               Image.fromarray(skimage.data.camera().astype(np.uint16) * 257).convert("I;16"), Image.fromarray(skimage.data.camera().astype(np.int32) * 257)]:
        out = to_rgb(im)
        assert out.mode == "RGB" and out.size == im.size
    with pytest.raises(ValueError, match="no fixed range"): to_rgb(Image.new("F", (4, 4)))
    with pytest.raises(TypeError, match="expected a PIL image"): to_rgb("file.jpg")

def test_config_validation():
    with pytest.raises(ValueError, match="unknown size classes"): CueConfig(mix={"huge": 1})
    with pytest.raises(ValueError, match="positive sum"): CueConfig(mix={"tiny": 0})
    with pytest.raises(ValueError, match="non-negative"): cue_rng(-1, "x")

def test_import_is_light():
    code = "import sys, locus.cues, locus.data; bad = [m for m in ('torch', 'torchvision', 'bitsandbytes', 'transformers', 'datasets') if m in sys.modules]; print(bad)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_png_build_cost_quoted_is_the_measured_one():
    """'~2.5x slower to build' (03_data, 05_config's --image_format help) is what bench/cues_bench.txt measured."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    rows = re.findall(r"^(1 MP .+?)\s+(jpeg|png)\s+on\s+(?:1\s+)?([\d.]+)\s+[\d.]+$", (root / "bench/cues_bench.txt").read_text(), re.M)
    runs, ratios = {}, []
    for src, fmt, ms in rows:
        if fmt == "jpeg" and (src, "png") in runs: runs = {}
        runs[(src, fmt)] = float(ms)
        if (src, "png") in runs and (src, "jpeg") in runs: ratios.append(runs[(src, "png")] / runs[(src, "jpeg")])
    assert len(ratios) >= 3 and all(2.2 <= r <= 2.8 for r in ratios), ratios
    for nb in ("03_data", "05_config"):
        assert "~2.5x slower to build" in (root / "nbs" / f"{nb}.ipynb").read_text()
