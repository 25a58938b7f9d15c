"LOCUS in miniature: the micro world's questions are right, the collator trains on answers only, the controls run through `locus train`'s code, and the committed results are what the committed checkpoints produce."
import json
from pathlib import Path
import numpy as np
import pytest
import torch

import locus.miniature as M
from locus.reward import has_format, parse_box
from locus.miniature import (MicroBench, SFTCollator, MicroSFTData, full_name, micro_example, micro_model, micro_question,
                             micro_scene, run_condition, shape_name, text_cue_dataset)

REPO = Path(__file__).resolve().parents[1]
ROOT, CONFIG = REPO / "runs" / "miniature", REPO / "configs" / "miniature.yaml"

def padded_crop(image, box):
    x1, y1, x2, y2 = box; p = max(2, int(0.15 * max(x2 - x1, y2 - y1)))
    return image.crop((max(0, x1 - p), max(0, y1 - p), min(image.size[0], x2 + p), min(image.size[1], y2 + p)))

def target_of(scene, box): return next(o for o in scene.objects if list(o.box) == list(box))

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_questions_are_right(seed):
    "Every kind's answer follows from the scene: the colour of the named shape, the side, the box, presence or absence."
    for i in range(12):
        sc, rng = micro_scene(seed, i), np.random.default_rng(i)
        for kind in [*M.MICRO_KINDS, "pair_ground"]:
            ex = micro_question(sc, kind, rng)
            if ex is None: continue
            if kind == "existence":
                name = ex["question"][len("Is there a "):].split(" in the image")[0]
                assert (ex["answer"] == "Yes") == any(full_name(o) == name for o in sc.objects)
                continue
            t = target_of(sc, ex["box"])
            if kind in ("attribute", "pair"): assert ex["options"][ex["answer"]] == t.color
            if kind in ("color", "pair_color"): assert ex["answer"] == t.color and not ex["options"]
            if kind in ("attribute", "color"): assert sum(shape_name(o) == shape_name(t) for o in sc.objects) == 1
            if kind == "grounding":
                assert json.loads(ex["answer"]) == list(t.box) and sum(full_name(o) == full_name(t) for o in sc.objects) == 1
            if kind == "grounding_think":   # the proxy task's answer format: the reward reads it as the object's box, format satisfied
                assert parse_box(ex["answer"]) == [float(v) for v in t.box] and has_format(ex["answer"]) and f"Find the {full_name(t)} " in ex["question"]
            if kind == "position":
                ref = next(o for o in sc.objects if f"of the {shape_name(o)}?" in ex["question"] and o is not t)
                side = ex["options"][ex["answer"]]
                assert (side == "left") == ((t.box[0] + t.box[2]) < (ref.box[0] + ref.box[2]))
            if kind.startswith("pair"): assert len(ex["images"]) == 2
            if kind == "pair_ground":   # the named object's box; image 2 is a crop of another object, never the answer's
                assert parse_box(ex["answer"]) == [float(v) for v in t.box] and f"Find the {full_name(t)} " in ex["question"]
                assert ex["question"].startswith("Image 1 is a full scene. Image 2 is a region cropped from image 1. Find the ")
                crops = [padded_crop(sc.image, o.box) for o in sc.objects]
                same = [np.array_equal(np.asarray(ex["images"][1]), np.asarray(c)) for c in crops]
                assert any(s for o, s in zip(sc.objects, same) if o is not t) and not same[sc.objects.index(t)]

def test_examples_are_deterministic_and_varied():
    a, b = micro_example(3, 17), micro_example(3, 17)
    assert a["question"] == b["question"] and a["answer"] == b["answer"] and np.array_equal(np.asarray(a["images"][0]), np.asarray(b["images"][0]))
    kinds = {micro_example(3, i)["kind"] for i in range(60)}
    assert kinds == set(M.MICRO_KINDS)

def test_micro_world_and_curriculum():
    "Scenes hold only the micro world's solid shapes; the pretraining stream follows its curriculum stage by stage."
    for i in range(20):
        assert all(o.shape in M.MICRO_SHAPES and o.texture == "solid" for o in micro_scene(4, i).objects)
    d = MicroSFTData(100, seed=2, curriculum=[(10, M.WARMUP_KINDS, (1, 2)), (20, M.MICRO_KINDS, (1, 3))])
    assert d.stage(9) == (M.WARMUP_KINDS, (1, 2)) and d.stage(10) == (M.MICRO_KINDS, (1, 3)) and d.stage(30) == (M.MICRO_KINDS, M.MICRO_OBJECTS)
    for i in range(10):
        ex = micro_example(2, i, *d.stage(i))
        assert ex["kind"] in M.WARMUP_KINDS and ex["n_objects"] <= 2
        assert d[i]["answer"] == ex["answer"]
    assert max(micro_example(2, i, *d.stage(i))["n_objects"] for i in range(10, 30)) <= 3
    needle = M.MICRO_NEEDLE.items(M.MICRO_NEEDLE.load(limit=12))
    assert all(it.question.split("of the ")[1].split("?")[0] in M.MICRO_SHAPES for it in needle)

@pytest.fixture(scope="module")
def small_model():
    return micro_model(hidden_size=64, text_layers=1, vision_depth=2)

def test_collator_trains_on_the_answer_only(small_model):
    _, proc = small_model
    data = MicroSFTData(6, seed=1)
    batch = SFTCollator(proc)([data[i] for i in range(6)])
    for i in range(6):
        lab = batch["labels"][i]
        assert proc.tokenizer.decode(lab[lab != -100]) == data[i]["answer"] + "<|im_end|>"
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()   # padding never scored

def test_micro_model_learns_on_the_stream(small_model):
    "A few SFT steps on the stream lower the loss on a fixed batch: the wiring carries learning signal."
    model, proc = small_model
    model = type(model)._from_config(model.config); model.train()
    batch = SFTCollator(proc)([MicroSFTData(16, seed=1)[i] for i in range(16)])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model(**batch).loss.item()
    for _ in range(8):
        loss = model(**batch).loss; loss.backward(); opt.step(); opt.zero_grad()
    assert model(**batch).loss.item() < 0.8 * first

def test_micro_bench_scores_each_kind():
    b = MicroBench("micro", counts={"attribute": 2, "existence": 2, "grounding": 2, "color": 1})
    items = list(b.items(b.load()))
    assert [it.category for it in items] == ["attribute"] * 2 + ["existence"] * 2 + ["grounding"] * 2 + ["color"]
    c = items[-1]; items = items[:-1]
    assert b.score(c, f"{c.answer.capitalize()}.", None)["correct"] and not b.score(c, "none", None)["correct"]
    g = items[-1]
    assert b.score(g, g.answer, None)["correct"] and b.score(g, f"<answer>{g.answer}</answer>", None)["iou"] == 1.0
    assert not b.score(g, "no idea", None)["correct"]
    e = items[2]
    assert b.score(e, e.answer, None)["correct"] and not b.score(e, "yes" if e.answer == "No" else "no", None)["correct"]
    a = items[0]
    assert b.score(a, a.answer, None)["correct"] and not b.score(a, "Z", None)["correct"]
    recs = [dict(category=it.category, correct=True, size="tiny", iou=1.0) for it in items]
    m = b.metrics(recs)
    assert m["overall"] == 100.0 and m["attribute/tiny"] == 100.0 and m["grounding_mean_iou"] == 100.0

def test_text_cue_rows_box_the_described_object(tmp_path):
    from locus.train import parse_config, proxy_data, proxy_source
    cfg, _ = parse_config(["--config", str(CONFIG), "--model", "tiny", "--cache_dir", str(tmp_path), "--n_train", "24", "--n_val", "2",
                           "--synthetic_images", "40", "--max_pixels", "12544"])
    rows, src = proxy_data(cfg, progress=False)["train"], proxy_source(cfg)
    ds = text_cue_dataset(rows, src)
    assert len(ds) + sum(ds.skipped.values()) == len(rows) and len(ds) > 0
    for r in ds:
        assert len(r["images"]) == 1 and r["images"][0].size == tuple(r["model_size"])
        name = r["prompt"][0]["content"][1]["text"].split("Find the ")[1].split(" in image 1")[0]
        objs = src.scene(int(r["source"].split(":")[2])).objects
        (o,) = [o for o in objs if full_name(o) == name]
        assert r["solution"] == [float(v) for v in o.box]   # 112 x 112 scenes are seen at full size: pixels == the model's frame

def test_conditions_run_through_locus_train(tmp_path, small_model):
    "sft and text (the two conditions with code of their own) train, keep only the adapter, and evaluate; a shard is validated."
    from locus.testing import save_pretrained_vlm
    save_pretrained_vlm(*small_model, tmp_path / "pretrained")
    over = ["--max_steps", "1", "--per_device_train_batch_size", "4", "--num_generations", "4", "--n_train", "8", "--n_val", "2",
            "--synthetic_images", "30", "--save_steps", "1", "--max_completion_length", "8", "--disable_tqdm", "true"]
    for name in ("sft", "text"):
        out = run_condition(name, 0, tmp_path, CONFIG, over)
        assert (out / "adapter_model.safetensors").exists() and not list(out.glob("checkpoint-*")) and not (out / "training_args.bin").exists()
        assert (out / "metrics.jsonl").read_text().strip()
    r = M.evaluate_condition(tmp_path, "text-s0", limit=2, progress=False)
    assert set(r) == {"micro", "micro_needle", "micro_needle_word", "proxy_val"} and r["micro"]["n"] == 2
    with pytest.raises(FileNotFoundError, match="no trained adapter"): M.evaluate_condition(tmp_path, "large-s0", limit=1)
    with pytest.raises(ValueError, match="shard"): M.miniature(str(tmp_path), stages="report", shard="2/2")

committed = pytest.mark.skipif(not (ROOT / "eval" / "locus-s0" / "predictions.jsonl").exists(), reason="no committed miniature results")

@committed
@pytest.mark.parametrize("run", ["base", "locus-s0"])
def test_committed_predictions_come_from_committed_checkpoints(tmp_path, run):
    "Re-answer the first items of each benchmark with the committed weights: the same greedy answers as committed."
    from locus.evaluate import evaluate
    from locus.model import load_model
    model, proc = load_model(ROOT / "pretrained", dtype="float32", adapter=None if run == "base" else ROOT / run)
    old = {(r["bench"], r["id"]): r for r in map(json.loads, open(ROOT / "eval" / run / "predictions.jsonl"))}
    for bench in ("micro", "micro_needle"):
        evaluate(model, proc, bench, tmp_path, limit=16, progress=False, batch_size=16)   # the committed first batch
    new = [json.loads(l) for l in open(tmp_path / "predictions.jsonl")]
    same = [r["raw"] == old[(r["bench"], r["id"])]["raw"] for r in new]
    assert len(new) == 32 and np.mean(same) >= 0.9, np.mean(same)   # thread counts may flip a near-tie

@committed
def test_committed_report_is_the_results():
    "results.md is what the report stage computes from the committed evaluations."
    tab = M.results_table(ROOT)
    assert set(tab.condition) == set(M.CONDITIONS) and (tab[tab.condition != "base"].seeds == 3).all()
    for _, r in tab.iterrows():
        assert f"{r['mean']:.1f} ± {r['std']:.1f}" in (ROOT / "results.md").read_text()

def test_validation_split_does_not_depend_on_n_train(tmp_path):
    "proxy_val_dir builds the validation split alone (n_train 0): it must hold the rows of the full build's validation split."
    from locus.train import parse_config, proxy_data
    args = ["--config", str(CONFIG), "--model", "tiny", "--cache_dir", str(tmp_path), "--n_val", "6", "--synthetic_images", "40", "--max_pixels", "12544"]
    a = proxy_data(parse_config(args + ["--n_train", "0"])[0], progress=False)["validation"]
    b = proxy_data(parse_config(args + ["--n_train", "12"])[0], progress=False)["validation"]
    assert len(a) == 6 and [r["solution"] for r in a] == [r["solution"] for r in b] and [r["source"] for r in a] == [r["source"] for r in b]

def test_pretrain_reuses_only_a_matching_checkpoint(tmp_path):
    "A finished checkpoint is reused for the same step count and refused, with the fix named, for another."
    out = tmp_path / "pretrained"; out.mkdir()
    (out / "model.safetensors").write_bytes(b"x"); (out / "log_history.json").write_text(json.dumps([{"step": 5, "loss": 1.0}]))
    assert M.pretrain(out, steps=5) == out
    with pytest.raises(ValueError, match="pretrained for 5 steps, not 7.*--pretrain_steps 5"): M.pretrain(out, steps=7)

def test_synthetic_world_options_reach_the_proxy_source(tmp_path):
    "configs/miniature.yaml's shapes and textures reach the proxy task's scenes; an unknown name is refused by name; unset options keep the default source."
    from locus.train import parse_config, proxy_source
    args = ["--config", str(CONFIG), "--model", "tiny", "--cache_dir", str(tmp_path)]
    src = proxy_source(parse_config(args)[0])
    assert src.identity()["shapes"] == list(M.MICRO_SHAPES) and src.identity()["textures"] == ["solid"]
    assert all(o.shape in M.MICRO_SHAPES and o.texture == "solid" for i in range(5) for o in src.scene(i).objects)
    with pytest.raises(ValueError, match="synthetic_shapes: unknown \\['blob'\\]"): proxy_source(parse_config(args + ["--synthetic_shapes", "ring,blob"])[0])
    plain = proxy_source(parse_config(args + ["--synthetic_shapes", "", "--synthetic_textures", ""])[0])
    assert "shapes" not in plain.identity() and "textures" not in plain.identity()

def test_word_needle_asks_the_needle_probe_openly():
    "The word needle probe has the needle probe's scenes and answers, asked without options; it scores the colour word."
    mc, word = (list(b.items(b.load(limit=6))) for b in (M.MICRO_NEEDLE, M.MICRO_NEEDLE_WORD))
    for a, b in zip(mc, word):
        assert a.id == b.id and np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
        assert b.answer == a.options[a.answer] and not b.options and b.question.endswith("Answer with one word.")
        assert M.MICRO_NEEDLE_WORD.score(b, f"{b.answer.capitalize()}.", None)["correct"]
        assert not M.MICRO_NEEDLE_WORD.score(b, "A", None)["correct"]

def test_continue_pretraining_is_phase_two(tmp_path, small_model):
    "Phase 2 starts from phase 1's weights, sees pair_ground questions, saves atomically, and skips a finished model."
    from collections import Counter
    from safetensors.torch import load_file
    from locus.testing import save_pretrained_vlm
    src = save_pretrained_vlm(*small_model, tmp_path / "phase1")
    kinds = Counter(micro_example(5, i, M.GROUNDING_MIX)["kind"] for i in range(300))
    assert 0.08 < kinds["pair_ground"] / 300 < 0.3, kinds
    out = M.continue_pretraining(src, tmp_path / "pretrained", steps=2, batch=2)
    assert max(h.get("step", 0) for h in json.loads((out / "log_history.json").read_text())) == 2
    assert not (tmp_path / "pretrained.work").exists() and not (tmp_path / "pretrained.tmp").exists()
    a, b = load_file(src / "model.safetensors"), load_file(out / "model.safetensors")
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert M.continue_pretraining(src, out, steps=2, batch=2) == out and (out / "model.safetensors").stat().st_mtime_ns == stamp

def test_pretraining_costs_are_the_committed_logs():
    "09's costs table states each pretraining phase's steps, minutes, rate and step time as the committed log_history.json records them."
    import nbformat, re
    md = "\n".join(c.source for c in nbformat.read(REPO / "nbs" / "09_miniature.ipynb", 4).cells if c.cell_type == "markdown")
    for phase, folder in (("phase 1", "pretrained-phase1"), ("phase 2", "pretrained")):
        row = re.search(rf"\| pretraining, {phase} \| ([^|]+)\|", md).group(1)
        end = json.loads((ROOT / folder / "log_history.json").read_text())[-1]
        steps = int(re.search(r"([\d,]+) steps", row).group(1).replace(",", ""))
        assert steps == end["step"], (phase, row)
        assert float(re.search(r"in ([\d.]+) min", row).group(1)) == pytest.approx(end["train_runtime"] / 60, abs=0.1 if "." in row.split("in ")[1][:5] else 0.5)
        if m := re.search(r"([\d.]+) examples/s", row): assert float(m.group(1)) == pytest.approx(end["train_samples_per_second"], abs=0.05)
        if m := re.search(r"([\d.]+) s a step", row): assert float(m.group(1)) == pytest.approx(1 / end["train_steps_per_second"], abs=0.005)
