"The micro world of nbs/09_microworld.ipynb: scenes are deterministic and well-posed, answers balanced, a box is a handful of tokens that round-trip, and the model's M-RoPE gives 6 x 6 visual tokens distinct positions."
import json
from pathlib import Path
import numpy as np
import pytest
import torch

from locus.microworld import (ANSWER, COLORS, KINDS, OBJECTS, SHAPES, SPLITS, WORDS, answer_balance, box_text, chat_prompt,
                              cue_class, eval_set, make_example, make_scene, micro_model, micro_tokenizer, rope_turns, score,
                              sft_batch, target_bucket)
from locus.microbase import curriculum, pretrain_example
from locus.reward import parse_box

REPO = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def model_proc():
    torch.set_num_threads(1)
    return micro_model()

def test_scenes_are_deterministic_and_well_posed():
    for seed in range(40):
        a, b = make_scene(seed), make_scene(seed)
        assert a.image.tobytes() == b.image.tobytes() and a.objects == b.objects
        t = a.target
        assert sum(o.shape == t.shape for o in a.objects) == 1 and sum(o.color == t.color for o in a.objects) == 1
        assert OBJECTS[0] <= len(a.objects) <= OBJECTS[1]
        boxes = [o.box for o in a.objects]   # objects never overlap
        for i, p in enumerate(boxes):
            for q in boxes[i + 1:]: assert p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1]

def test_answers_follow_from_the_scene():
    for seed in range(20):
        t = make_scene(seed).target
        assert make_example(seed, "colour")["answer"] == t.color
        assert make_example(seed, "shape")["answer"] == t.shape
        assert parse_box(make_example(seed, "ground")["answer"]) == list(t.box)
        b = make_example(seed, "proxy")["box"]
        assert b[0] <= t.box[0] and b[1] <= t.box[1] and b[2] >= t.box[2] and b[3] >= t.box[3] and cue_class((b[2] - b[0]) * (b[3] - b[1]) / 168 ** 2) == "large"

def test_answers_are_balanced():
    rows = [pretrain_example(s, i, 1.0) for s in range(100) for i in range(32)]   # 3,200 rows, as gate.json counts
    for k in KINDS: assert answer_balance(rows, k)["ratio"] <= 1.5, k

def test_eval_sets_hold_their_size_class():
    assert {target_bucket(e["area"]) for e in eval_set("colour", 30, SPLITS["val"], "tiny")} == {"tiny"}
    assert {target_bucket(e["area"]) for e in eval_set("colour", 30, SPLITS["val"], "larger")} == {"larger"}
    s = eval_set("proxy", 20, SPLITS["val"], cues={"tiny": 0.7, "small": 0.3})
    assert [e["cue"] for e in s] == ["tiny"] * 14 + ["small"] * 6
    assert {e["n_objects"] for e in eval_set("colour", 30, SPLITS["test"], "small", objects=(5, 7))} == {5, 6, 7}

def test_curriculum_grows():
    assert curriculum(0.0)[0] == (1, 1) and curriculum(0.1)[0] == (1, 2) and curriculum(0.2)[0][1] < OBJECTS[1] and curriculum(0.5)[0] == OBJECTS

def test_a_box_is_a_few_tokens_and_round_trips():
    tok = micro_tokenizer()
    for b in ([0, 0, 12, 12], [100, 7, 168, 168], [33, 81, 45, 97]):
        c = ANSWER.format(box_text(b)); ids = tok(c)["input_ids"]
        assert len(ids) == 13 and tok.decode(ids) == c and parse_box(tok.decode(ids)) == b
    for w in WORDS: assert len(tok(w, add_special_tokens=False)["input_ids"]) == 1, w
    e = make_example(0, "ground"); assert score(e, ANSWER.format(e["answer"])) ["iou"] == 1.0

def test_rope_sees_position():
    before, after = rope_turns(1e6, 16, (2, 3, 3), 4), rope_turns(1000.0, 32, (0, 4, 12), 6)
    assert before["width"].max() < 1e-3 and after["width"].max() > 0.8 and after["height"].min() > 1.0
    assert (100 * 1000.0 ** (-np.arange(0, 32, 2) / 32) < 0.5).sum() >= 3   # pairs left for content over 100 tokens

def test_model_positions(model_proc):
    model, proc = model_proc
    e = make_example(1, "proxy")
    b = proc(text=[chat_prompt(proc, e)], images=e["images"], return_tensors="pt")
    assert b["image_grid_thw"].tolist() == [[1, 12, 12], [1, 4, 4]]
    pos, _ = model.model.get_rope_index(b["input_ids"], b["mm_token_type_ids"], image_grid_thw=b["image_grid_thw"], attention_mask=b["attention_mask"])
    img = pos[:, 0, b["input_ids"][0] == model.config.image_token_id][:, :36]
    assert len(set(img[1].tolist())) == 6 and len(set(img[2].tolist())) == 6
    cfg = model.config.text_config.rope_parameters
    assert cfg["rope_theta"] == 1000.0 and list(cfg["mrope_section"]) == [0, 4, 12]
    bt = sft_batch(proc, [make_example(2, "colour"), make_example(3, "proxy")])
    assert (bt["labels"] != -100).sum(1).tolist() == [6, 14]
    assert 2e6 < sum(p.numel() for p in model.parameters()) < 5e6

def test_committed_plan_and_gate_agree():
    plan_p, gate_p = REPO / "runs/miniature2/plan.json", REPO / "runs/miniature2/gate.json"
    if not gate_p.exists(): pytest.skip("no gate.json yet")
    plan, gate = json.loads(plan_p.read_text()), json.loads(gate_p.read_text())
    assert set(gate["gate"]) == set(plan["gate"]) - {"rule"}
    assert gate["passed"] == all(g["passed"] for g in gate["gate"].values())


def test_readme_reports_the_gate_as_measured():
    """The README's micro-world row quotes both candidates' gate.json (A, then B), and says whether any passed."""
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    gates = [json.loads((root / p).read_text())["gate"] for p in ("runs/miniature2/gate.json", "runs/miniature2/b/gate.json")]
    row = next(l for l in (root / "README.md").read_text().splitlines() if l.startswith("| micro-world base"))
    assert ("both fail the gate" in row) == (not any(all(v["passed"] for v in g.values()) for g in gates))
    pc = lambda k: " / ".join(f"{100 * g[k]['value']:.1f}%" for g in gates)
    for figure in (f"colour of larger targets {pc('colour_larger')}", f"grounding ACC@0.5 {pc('ground_larger')}", f"proxy-val mIoU {pc('proxy_val_miou')}"):
        assert figure in row, figure


def test_object_cover_is_each_objects_pixel_share():
    from locus.microbase import object_cover
    from locus.microworld import draw_shape, CANVAS
    from PIL import Image, ImageDraw
    for seed in (1, 2, 3):
        sc = make_scene(seed); cov = object_cover(sc)
        assert cov.shape == (36, len(sc.objects)) and torch.allclose(cov.sum(0), torch.ones(len(sc.objects)))
        for k, o in enumerate(sc.objects):   # objects never overlap: a token's share is the object's own pixels in it over all of them
            im = Image.new("L", (CANVAS, CANVAS), 0); draw_shape(ImageDraw.Draw(im), o.shape, o.box, 1)
            a = np.asarray(im)[:28, :28].sum() / np.asarray(im).sum()
            assert float(cov[0, k]) == pytest.approx(a, abs=1e-6)


def test_pretraining_stages_chain(tmp_path):
    "Stage 0 writes the whole model; stage 1 starts from exactly those weights, trains, and saves a base that loads."
    from safetensors.torch import load_file
    from locus.microbase import pretrain, pretrain_vision
    from locus.testing import load_pretrained_vlm
    torch.set_num_threads(1)
    m0, _ = pretrain_vision(tmp_path, steps=2, log_every=1)
    w0 = load_file(str(tmp_path / "vision" / "model.safetensors"))
    fresh, _ = micro_model()
    changed = [k for k, v in fresh.state_dict().items() if not torch.equal(v, w0[k])]
    assert changed and all(k.startswith("model.visual.") for k in changed)   # stage 0 trains the vision tower only
    m1, _ = pretrain(tmp_path, minutes=100, max_steps=2, log_every=1, init=tmp_path / "vision" / "model.safetensors")
    assert json.loads((tmp_path / "vision" / "log.json").read_text())[-1]["step"] == 2
    base, proc = load_pretrained_vlm(tmp_path / "base")
    assert all(torch.equal(v, m1.state_dict()[k]) for k, v in base.state_dict().items())


def test_proxy_rows_train_under_locus_train(tmp_path):
    "`source: microworld` gives `locus train` the micro world's proxy rows; the committed base trains on them with the shipped config."
    import subprocess, sys
    from locus.microworld import proxy_dataset
    ds = proxy_dataset(10, SPLITS["train"] + 5_000_000)
    e = eval_set("proxy", 10, SPLITS["train"] + 5_000_000, cues={"tiny": 0.7, "small": 0.3})
    assert ds["solution"] == [[float(v) for v in x["box"]] for x in e] and ds[3]["images"][1].size == (56, 56)
    out = tmp_path / "run"
    r = subprocess.run([str(Path(sys.executable).with_name("locus")), "train", "--config", str(REPO / "configs/microworld.yaml"),
                        "--model", str(REPO / "runs/miniature2/base"), "--output_dir", str(out), "--max_steps", "1", "--n_train", "8",
                        "--n_val", "8", "--cache_dir", str(tmp_path / "cache"), "--save_steps", "0"],
                       capture_output=True, text=True, cwd=REPO, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    h = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert h["rewards/format_reward/mean"] >= 0.9 and h["rewards/box_parsed/mean"] >= 0.9 and h["rewards/iou_reward/mean"] > 0
