"""Attention-in-Box (locus.attention) on the offline tiny Qwen2.5-VL: the arithmetic on hand-made tensors, the hooks
against `output_attentions`, multi-image prompts, LoRA, errors, data files, the report and the CLI."""
import csv, importlib.util, json, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from locus.attention import (AttentionUnavailable, BoxedItem, aib_from_inputs, attention_cli, attention_in_box,
                             attention_report, bootstrap_ci, paired_difference, box_mask, build_inputs, check_eager, decoder_attentions,
                             image_token_spans, item_aib, load_boxed_items, peak_in_box, run_aib, summarize_aib)
from locus.boxes import convert_box, pixel_budget, resized_size
from locus.testing import crop_pair_inputs, tiny_checkpoint, tiny_qwen25_vl

ASTRONAUT = Image.fromarray(skdata.astronaut())   # 512 x 512
COFFEE = Image.fromarray(skdata.coffee())         # 600 x 400: a non-square grid


@pytest.fixture(scope="module")
def tiny():
    return tiny_qwen25_vl(attn_implementation="eager")


def reference_rows(model, inputs):
    "Head-averaged last-query rows of every layer, from the full maps of `output_attentions=True`."
    with torch.no_grad(): att = model(**inputs, output_attentions=True).attentions
    return torch.stack([a[0, :, -1].mean(0) for a in att])


class Planted:
    "Replace every decoder layer's attention weights by a last-query row that is one-hot on `index`."
    def __init__(self, model, index): self.model, self.index = model, index
    def __enter__(self):
        def hook(mod, args, out):
            w = torch.zeros_like(out[1]); w[..., -1, self.index] = 1.0
            return out[0], w
        self.handles = [m.register_forward_hook(hook) for m in decoder_attentions(self.model)]
    def __exit__(self, *exc):
        for h in self.handles: h.remove()


# --- arithmetic on hand-made tensors
def test_one_hot_cell_gives_expected_aib_and_peak():
    for r, c in [(0, 0), (2, 5), (7, 7)]:
        a = np.zeros((8, 8)); a[r, c] = 0.4
        around = box_mask([c * 28 + 5, r * 28 + 5, c * 28 + 20, r * 28 + 20], (8, 8))
        assert around.sum() == 1 and attention_in_box(a, around) == 1.0 and peak_in_box(a, around)
        elsewhere = box_mask([((c + 4) % 8) * 28, ((r + 4) % 8) * 28, ((c + 4) % 8 + 1) * 28, ((r + 4) % 8 + 1) * 28], (8, 8))
        assert attention_in_box(a, elsewhere) == 0.0 and not peak_in_box(a, elsewhere)
    a = np.full((4, 6), 1.0); a[1, 2] = 3.0                     # 3 / (23 + 3) inside a one-cell mask
    m = np.zeros((4, 6), bool); m[1, 2] = True
    assert attention_in_box(a, m) == pytest.approx(3 / 26) and peak_in_box(a, m)


def test_aib_edge_cases():
    a = np.random.default_rng(0).random((3, 5, 7))
    assert np.allclose(attention_in_box(a, np.ones((5, 7), bool)), 1.0)
    assert np.all(attention_in_box(a, np.zeros((5, 7), bool)) == 0.0)
    assert np.isnan(attention_in_box(np.zeros((5, 7)), np.ones((5, 7), bool)))   # no attention: no AIB, not 0
    assert attention_in_box(torch.ones(5, 7), box_mask([0, 0, 28, 28], (5, 7))) == pytest.approx(1 / 35)


def test_box_mask_matches_rasterised_box():
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:84:0.25, 0:140:0.25] + 0.125
    for _ in range(300):
        x1, y1 = rng.uniform(-10, 130), rng.uniform(-10, 80)   # on a 1/4 px lattice, so the raster below is exact
        b = list(np.round(np.array([x1, y1, x1 + rng.uniform(0.25, 50), y1 + rng.uniform(0.25, 50)]) * 4) / 4)
        inside = (xs > b[0]) & (xs < b[2]) & (ys > b[1]) & (ys < b[3])
        np.testing.assert_array_equal(box_mask(b, (3, 5)), inside.reshape(3, 112, 5, 112).any((1, 3)))
    # a box on cell edges in original pixels claims exactly its cells despite float rounding of the scale
    assert box_mask(convert_box([25, 25, 50, 50], "pixels", "resized", (100, 100), (112, 112)), (4, 4)).sum() == 1


def test_bootstrap_ci():
    v = np.r_[np.zeros(40), np.ones(60)]
    lo, hi = bootstrap_ci(v)
    assert lo < 0.6 < hi and hi - lo == pytest.approx(2 * 1.96 * np.sqrt(0.24 / 100), abs=0.03)
    assert bootstrap_ci(v) == bootstrap_ci(v)                    # fixed seed: same interval
    lo2, hi2 = bootstrap_ci(np.stack([v, 1 - v], 1))             # per column
    assert lo2.shape == (2,) and lo2[1] < 0.4 < hi2[1]


# --- token layout
def test_grid_matches_image_tokens(tiny):
    model, processor = tiny
    ip = processor.image_processor
    for image in (ASTRONAUT, COFFEE):
        inputs = build_inputs(processor, [image], "What is this?")
        (span,) = image_token_spans(inputs["input_ids"], inputs["image_grid_thw"], model.config.image_token_id, ip.merge_size)
        n_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
        W, H = resized_size(*image.size, **pixel_budget(processor))
        assert span.grid == (1, H // 28, W // 28) and span.resized == (W, H)
        assert span.stop - span.start == n_tokens == H // 28 * W // 28
        r = aib_from_inputs(model, processor, inputs, (0, 0, *image.size), image.size)
        assert r.maps.shape == (2, H // 28, W // 28) and r.mask.shape == (H // 28, W // 28)


def test_spans_reject_inputs_and_grids_that_disagree(tiny):
    model, processor = tiny
    pair = crop_pair_inputs(processor, ASTRONAUT, (100, 100, 200, 200))
    with pytest.raises(ValueError, match="do not belong together"):
        image_token_spans(pair["input_ids"], pair["image_grid_thw"][1:], model.config.image_token_id)
    ids = pair["input_ids"].clone(); ids[0, 30] = 0                  # a hole in image 0's run ...
    ids[0, -1] = model.config.image_token_id                         # ... and a stray image token at the end
    with pytest.raises(ValueError, match="not one contiguous run"):
        image_token_spans(ids, pair["image_grid_thw"], model.config.image_token_id)


# --- the model path
def test_hooks_match_output_attentions_and_query_is_last_token(tiny):
    model, processor = tiny
    item = BoxedItem("a", ASTRONAUT, "Which flag hangs behind her?", (0, 0, 120, 200))
    r = item_aib(model, processor, item)
    inputs = build_inputs(processor, [ASTRONAUT], item.question)
    ref = reference_rows(model, inputs)[:, r.span[0]:r.span[1]].reshape(r.maps.shape)
    assert torch.equal(torch.from_numpy(r.maps), ref)
    assert r.query == inputs["input_ids"].shape[1] - 1
    assert processor.tokenizer.decode(inputs["input_ids"][0, :r.query + 1]).endswith("<|im_start|>assistant\n")
    assert np.isclose(r.aib, attention_in_box(r.maps.mean(0), r.mask)) and len(r.aib_per_layer) == 2
    p = item_aib(model, processor, item, answer_prefix="<think>")     # the query moves to the prefix's last token
    assert p.query == r.query + len(processor.tokenizer("<think>")["input_ids"])


def test_whole_image_box_is_one_and_empty_mask_is_zero(tiny):
    model, processor = tiny
    inputs = build_inputs(processor, [COFFEE], "What lies on the saucer?")
    W, H = COFFEE.size
    whole = aib_from_inputs(model, processor, inputs, (0, 0, W, H), (W, H))
    assert whole.mask.all() and np.allclose(whole.aib_per_layer, 1.0) and whole.aib == pytest.approx(1.0) and whole.peak_in_box
    outside = aib_from_inputs(model, processor, inputs, (W + 1, 0, W + 40, 30), (W, H))
    assert not outside.mask.any() and np.all(outside.aib_per_layer == 0.0) and outside.aib == 0.0 and not outside.peak_in_box
    spoon = aib_from_inputs(model, processor, inputs, (328, 248, 405, 328), (W, H))
    assert 0 < spoon.aib < 1 and spoon.mask.sum() == 6                # resized 252 x 168: x 137.8-170.1, y 104.2-137.8 -> 3 x 2 cells


def test_planted_attention_on_a_known_cell(tiny):
    model, processor = tiny
    inputs = build_inputs(processor, [ASTRONAUT], "q")
    (span,) = image_token_spans(inputs["input_ids"], inputs["image_grid_thw"], model.config.image_token_id)
    with Planted(model, span.start + 3 * 8 + 6):                      # row 3, column 6 of the 8 x 8 grid
        inside = aib_from_inputs(model, processor, inputs, (6 * 64 + 1, 3 * 64 + 1, 7 * 64 - 1, 4 * 64 - 1), ASTRONAUT.size)
        outside = aib_from_inputs(model, processor, inputs, (0, 0, 256, 256), ASTRONAUT.size)
    assert np.argwhere(inside.mean_map).tolist() == [[3, 6]] and inside.mask.sum() == 1
    assert inside.aib == 1.0 and inside.peak_in_box and np.all(inside.aib_per_layer == 1.0)
    assert outside.aib == 0.0 and not outside.peak_in_box


def test_multi_image_prompt_reads_the_right_image(tiny):
    model, processor = tiny
    pair = crop_pair_inputs(processor, ASTRONAUT, (150, 350, 250, 450))   # image 0: 8 x 8 tokens, image 1: 4 x 4
    spans = image_token_spans(pair["input_ids"], pair["image_grid_thw"], model.config.image_token_id)
    ref = reference_rows(model, pair)
    for k, (s, size) in enumerate(zip(spans, [ASTRONAUT.size, (100, 100)])):
        r = aib_from_inputs(model, processor, pair, (0, 0, *size), size, image_index=k)
        assert r.span == (s.start, s.stop)
        assert torch.equal(torch.from_numpy(r.maps), ref[:, s.start:s.stop].reshape(r.maps.shape))
    assert spans[0].grid == (1, 8, 8) and spans[1].grid == (1, 4, 4)
    with Planted(model, spans[1].start + 2 * 4 + 1):                   # image 1, row 2, column 1
        crop = aib_from_inputs(model, processor, pair, (25, 50, 50, 75), (100, 100), image_index=1)
        full = aib_from_inputs(model, processor, pair, (0, 0, 512, 512), ASTRONAUT.size, image_index=0)
    assert crop.aib == 1.0 and crop.peak_in_box and np.argwhere(crop.mean_map).tolist() == [[2, 1]]
    assert full.maps.sum() == 0.0 and np.isnan(full.aib)                 # image 0 got none of the planted mass
    with pytest.raises(IndexError, match="2 image"):
        aib_from_inputs(model, processor, pair, (0, 0, 10, 10), (100, 100), image_index=2)


def test_lora_model(tiny):
    from peft import LoraConfig, get_peft_model
    model, processor = tiny
    item = BoxedItem("c", COFFEE, "What lies on the saucer?", (328, 248, 405, 328))
    base = item_aib(model, processor, item)
    lora = get_peft_model(tiny_qwen25_vl(attn_implementation="eager")[0], LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).eval()
    assert len(decoder_attentions(lora)) == 2
    assert np.array_equal(item_aib(lora, processor, item).maps, base.maps)   # B = 0 at init: the base model
    with torch.no_grad():
        for n, p in lora.named_parameters():
            if "lora_B" in n: p.normal_(0, 0.5)
    adapted = item_aib(lora, processor, item)
    assert not np.allclose(adapted.maps, base.maps)
    inputs = build_inputs(processor, [COFFEE], item.question)
    ref = reference_rows(lora, inputs)[:, adapted.span[0]:adapted.span[1]].reshape(adapted.maps.shape)
    assert torch.equal(torch.from_numpy(adapted.maps), ref)


def test_sdpa_model_gets_an_actionable_error():
    model, processor = tiny_qwen25_vl(attn_implementation="sdpa")
    with pytest.raises(AttentionUnavailable, match=r'attn_implementation="eager".*set_attn_implementation'):
        item_aib(model, processor, BoxedItem("a", ASTRONAUT, "q", (0, 0, 10, 10)))
    model.set_attn_implementation({"text_config": "eager"})
    check_eager(model)
    assert model.config.vision_config._attn_implementation == "sdpa"     # the vision tower keeps its fast path
    assert item_aib(model, processor, BoxedItem("a", ASTRONAUT, "q", (0, 0, 512, 512))).aib == pytest.approx(1.0)


def test_no_hooks_left_behind(tiny):
    model, processor = tiny
    before = [list(m._forward_hooks) for m in decoder_attentions(model)]   # transformers' own capture hooks may be there
    item_aib(model, processor, BoxedItem("a", ASTRONAUT, "q", (0, 0, 10, 10)))
    with pytest.raises(AttentionUnavailable):                              # also when the forward fails half-way
        def no_weights(mod, args, out): return out[0], None
        hs = [m.register_forward_hook(no_weights) for m in decoder_attentions(model)]
        try: item_aib(model, processor, BoxedItem("a", ASTRONAUT, "q", (0, 0, 10, 10)))
        finally:
            for h in hs: h.remove()
    assert [list(m._forward_hooks) for m in decoder_attentions(model)] == before


# --- data, report, CLI
def write_data(tmp: Path):
    (tmp / "images").mkdir(parents=True, exist_ok=True)
    ASTRONAUT.save(tmp / "images" / "astronaut.png"); COFFEE.save(tmp / "images" / "coffee.jpg")
    recs = [{"id": "astro/patch", "image": "astronaut.png", "question": "What is on the round patch?", "box": [150, 370, 240, 450]},
            {"id": "spoon", "image": "coffee.jpg", "question": "What lies on the saucer?", "box": [328, 248, 405, 328]}]
    (tmp / "images" / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return tmp / "images" / "items.jsonl"


def test_load_boxed_items(tmp_path):
    path = write_data(tmp_path)
    items = load_boxed_items(path, path.parent)
    assert [(i.id, i.box) for i in items] == [("astro/patch", (150.0, 370.0, 240.0, 450.0)), ("spoon", (328.0, 248.0, 405.0, 328.0))]
    assert items[1].load_image().size == (600, 400)
    good = json.loads(path.read_text().splitlines()[0])
    bad = [good, {**good, "id": "x", "image": "../../etc/passwd"}, {**good, "id": "y", "box": [0, 0, 600, 10]},
           {**good, "id": "z", "image": "missing.png"}, {"id": "w"}, good]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError) as e: load_boxed_items(tmp_path / "bad.json", path.parent)
    msg = str(e.value)
    for s in ["5 of 6 records", "bad.json:2: image '../../etc/passwd' lies outside", "bad.json:3: box [0, 0, 600, 10]",
              "bad.json:4: image 'missing.png' not found", "bad.json:5: missing field(s)", "bad.json:6: duplicate id 'astro/patch'"]:
        assert s in msg, (s, msg)


def test_report_files(tiny, tmp_path):
    model, processor = tiny
    path = write_data(tmp_path)
    items = load_boxed_items(path, path.parent)
    results = {"a": run_aib(model, processor, items), "b": run_aib(model, processor, items)}
    summaries = attention_report(items, results, tmp_path / "out", n_heatmaps=1)
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["aib_items.csv", "aib_layers.png", "aib_summary.json", "heatmaps/000_astro_patch.png"]
    rows = list(csv.DictReader(open(tmp_path / "out" / "aib_items.csv")))
    assert [(r["id"], r["model"]) for r in rows] == [("astro/patch", "a"), ("spoon", "a"), ("astro/patch", "b"), ("spoon", "b")]
    assert float(rows[1]["aib"]) == pytest.approx(results["a"][1].aib, abs=1e-6) and rows[1]["image_tokens"] == str(6 * 9)       # coffee: 252 x 168 px
    written = json.loads((tmp_path / "out" / "aib_summary.json").read_text())
    assert written["models"]["a"]["n"] == 2 and written["paired"]["a"] == "a" and written["paired"]["mean_difference"] == 0.0
    assert summaries["models"]["a"]["aib"] == pytest.approx(np.mean([r.aib for r in results["a"]]))
    assert summarize_aib(results["a"])["per_layer"] == summaries["models"]["a"]["per_layer"]
    assert attention_report(items, {"a": results["a"]}, tmp_path / "one", n_heatmaps=0)["paired"] is None


def test_paired_difference_on_planted_gain():
    from locus.attention import AIBResult
    rng = np.random.default_rng(0)
    def result(maps, box): return AIBResult(maps, box_mask(box, (8, 8)), list(box), (224, 224), (224, 224), 0, (0, 64))
    boxes = [(i * 28, i * 20, i * 28 + 60, i * 20 + 80) for i in range(5)]
    base = [result(rng.random((3, 8, 8)), b) for b in boxes]
    boosted = [result(r.maps * np.where(r.mask, 2.0, 1.0), r.box) for r in base]   # twice the attention in the box
    d = paired_difference(base, boosted)
    assert d["n"] == 5 and d["b_higher"] == 1.0 and 0 < d["ci"][0] <= d["mean_difference"] <= d["ci"][1]
    assert d["mean_difference"] == pytest.approx(np.mean([b.aib - a.aib for a, b in zip(base, boosted)]))
    assert paired_difference(boosted, base)["mean_difference"] == pytest.approx(-d["mean_difference"])
    with pytest.raises(ValueError, match="same items"): paired_difference(base, boosted[:3])


def test_cli_help_documents_every_parameter():
    from fastcore.script import anno_parser
    import inspect
    parser = anno_parser(attention_cli)
    helps = {a.dest: a.help for a in parser._actions}
    for name in inspect.signature(attention_cli).parameters:
        assert helps.get(name), f"--{name} has no help text"
    args = parser.parse_args(["d.jsonl", "m", "--limit", "3", "--max_pixels", "50176"])
    assert (args.limit, args.max_pixels, args.quantization) == (3, 50176, "none")


def test_cli_end_to_end(tmp_path, capsys):
    "`locus attention ...` through the real dispatcher, in this process to spare a second interpreter's imports."
    from locus.cli import main
    ckpt = tiny_checkpoint(tmp_path / "tiny")
    path = write_data(tmp_path)
    out = tmp_path / "report"
    assert main(["attention", str(path), str(ckpt), "--model_b", str(ckpt), "--names", "one,two",
                 "--out", str(out), "--dtype", "float32", "--heatmaps", "1"]) == 0
    stdout = capsys.readouterr().out
    assert "one: mean AIB" in stdout and "two: mean AIB" in stdout, stdout
    summary = json.loads((out / "aib_summary.json").read_text())
    models = summary["models"]
    assert models["one"]["n"] == 2 and models["one"]["aib"] == pytest.approx(models["two"]["aib"])   # same weights
    assert summary["paired"]["mean_difference"] == pytest.approx(0.0, abs=1e-6) and "two - one: +0.0000" in stdout
    assert len(list((out / "heatmaps").glob("*.png"))) == 1 and (out / "aib_layers.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "aib_items.csv")))
    assert len(rows) == 4 and all(0 < float(r["aib"]) < 1 for r in rows)
