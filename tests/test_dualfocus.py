"""locus.dualfocus (crop geometry, box reading, the choice rule, the loss, the whole mode with scripted generations)
and locus.context_rot (suppression, grounding analysis, the needle probe)."""
import json

import numpy as np
import pytest
import torch

torch.set_num_threads(1)   # 2 shared cores: one thread avoids OpenMP contention (see bench/eval_bench.py)
from PIL import Image

import locus.dualfocus as df
from locus.boxes import xywh_to_xyxy
from locus.context_rot import (NeedleProbe, grounding_vs_correctness, iou_bucket, needle_curve, suppress_item,
                               suppress_outside, suppression_table)
from locus.dualfocus import choose_answer, option_loss, read_box, square_enlarge, union_box
from locus.evaluate import Ctx, RunLog, evaluate, get_benchmark, load_rows
from locus.fixtures import write_fixture


@pytest.fixture(scope="module")
def tiny():
    from locus.testing import tiny_qwen25_vl
    return tiny_qwen25_vl(seed=0)


@pytest.fixture(scope="module")
def vstar(tmp_path_factory):
    return write_fixture("vstar", tmp_path_factory.mktemp("fx") / "vstar", n=4, max_side=320)


# ---------------------------------------------------------------- geometry
def test_square_enlarge():
    assert square_enlarge([100, 100, 140, 120], 512, 512) == [75, 65, 165, 155]      # side 40, +25 each side
    assert square_enlarge([0, 0, 30, 10], 512, 512) == [0, 0, 55, 45]                # clipped
    assert square_enlarge([490, 500, 512, 512], 512, 512) == [465, 470, 512, 512]       # centre (501, 506), half 11 + 25
    assert square_enlarge([10, 10, 20, 20], 512, 512, pad=0) == [10, 10, 20, 20]


def test_read_box_frames():
    ctx = Ctx("resized", {"min_pixels": 56 * 56, "max_pixels": 224 * 224, "factor": 28})
    assert read_box("[0.25, 0.5, 0.5, 0.75]", (512, 512), ctx) == [128.0, 256.0, 256.0, 384.0]
    assert read_box('{"bbox_2d": [56, 112, 112, 168]}', (512, 512), ctx) == [128.0, 256.0, 256.0, 384.0]
    assert read_box("[0.5, 0.5, 0.5, 0.9]", (512, 512), ctx) is None                 # degenerate
    assert read_box("nothing", (512, 512), ctx) is None
    assert union_box([[10, 10, 5, 5], [30, 0, 10, 10]]) == [10, 0, 40, 15] and union_box(None) is None


# ---------------------------------------------------------------- the choice
class Loss:
    def __init__(self, table): self.table, self.calls = table, []
    def __call__(self, opt): self.calls.append(opt); return self.table[opt]


def test_choice_one_valid():
    loss = Loss({})
    assert choose_answer("A", None, loss) == ("macro", "only macro valid")
    assert choose_answer(None, "C", loss) == ("micro", "only micro valid")
    assert loss.calls == []


def test_choice_none_valid_is_macro():
    loss = Loss({})
    assert choose_answer(None, None, loss) == ("macro", "neither valid: macro") and loss.calls == []


def test_choice_both_valid_lower_loss():
    loss = Loss({"A": 2.5, "B": 0.5})
    assert choose_answer("A", "B", loss)[0] == "micro"
    assert choose_answer("B", "A", loss)[0] == "macro"
    assert choose_answer("A", "A", loss) == ("macro", "agree")
    assert loss.calls == ["A", "B", "B", "A"]


def test_option_loss_is_the_mean_nll_of_the_option_tokens(tiny):
    model, processor = tiny
    im = Image.new("RGB", (100, 80), (200, 30, 30))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color?"}]}]
    got = option_loss(model, processor, msgs, [im], "red")
    # by hand: full sequence forward, log-softmax at the positions before each option token
    prompt = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    inp = processor(text=[prompt], images=[im], return_tensors="pt")
    opt = processor.tokenizer("red", add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = torch.cat([inp["input_ids"], opt], 1)
    extra = {k: (torch.cat([v, torch.zeros_like(opt)], 1) if v.dim() == 2 and v.shape[1] == inp["input_ids"].shape[1] else v)
             for k, v in inp.items() if k not in ("input_ids", "attention_mask")}
    with torch.no_grad(): logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits
    n = opt.shape[1]
    lp = torch.log_softmax(logits[0, -n - 1:-1].float(), -1)
    want = -lp[torch.arange(n), opt[0]].mean().item()
    assert abs(got - want) < 1e-4


def test_dualfocus_mode_with_scripted_generations(vstar, tmp_path, monkeypatch):
    """The orchestration, deterministic: macro 'A', box, micro 'B' -> both valid, the lower loss wins."""
    calls = []
    def fake_generate(model, processor, conversations, images, max_new_tokens):
        calls.append((len(conversations), [len(ims) for ims in images], conversations[0][-1]["content"][-1]["text"][:30]))
        last = conversations[0][-1]["content"][-1]["text"]
        if last == df.BOX_PROMPT: return [{"text": "[0.1, 0.1, 0.3, 0.4]", "new_tokens": 7}] * len(conversations)
        if len(conversations[0]) == 1: return [{"text": "A", "new_tokens": 1}] * len(conversations)
        return [{"text": "(B)", "new_tokens": 2}] * len(conversations)
    monkeypatch.setattr(df, "generate", fake_generate)
    monkeypatch.setattr(df, "option_loss", lambda m, p, msgs, ims, opt: {"red": 3.0, "green": 1.0}.get(opt, 9.0))
    evaluate(None, None, "vstar", tmp_path / "run", source=vstar, mode="dualfocus", progress=False)
    recs = RunLog(tmp_path / "run" / "predictions.jsonl").of("vstar")
    assert len(recs) == 4 and len(calls) == 3                               # macro, box, micro: one batch each
    assert calls[2][1] == [2] * 4                                             # micro sees full image + crop
    sizes = {it.id: it.images[0].size for it in get_benchmark("vstar").items(load_rows(vstar))}
    for r in recs:
        assert r["df_choice"].startswith("lower loss: micro")               # B = green has the lower loss
        assert r["parsed"] == "B" and r["passes"] == 5 and r["new_tokens"] == 1 + 7 + 2
        W, H = sizes[r["id"]]
        assert r["df_crop"] == square_enlarge([0.1 * W, 0.1 * H, 0.3 * W, 0.4 * H], W, H)


def test_dualfocus_box_failure_falls_back_to_macro(vstar, tmp_path, monkeypatch):
    def fake_generate(model, processor, conversations, images, max_new_tokens):
        return [{"text": "A" if len(c) == 1 else "no box, sorry", "new_tokens": 1} for c in conversations]
    monkeypatch.setattr(df, "generate", fake_generate)
    evaluate(None, None, "vstar", tmp_path / "run", source=vstar, mode="dualfocus", progress=False)
    recs = RunLog(tmp_path / "run" / "predictions.jsonl").of("vstar")
    assert all(r["df_choice"] == "box parse failure: macro" and r["parsed"] == "A" and r["passes"] == 2 for r in recs)


def test_dualfocus_on_the_tiny_model(vstar, tiny, tmp_path):
    model, processor = tiny
    m = evaluate(model, processor, "vstar", tmp_path / "run", source=vstar, mode="dualfocus", oracle_box=True,
                 max_new_tokens=4, progress=False)
    recs = RunLog(tmp_path / "run" / "predictions.jsonl").of("vstar")
    assert all(r["df_micro"] is not None and r["passes"] >= 2 and r["mode"] == "dualfocus" for r in recs)
    assert m["cost_per_item"]["passes"] >= 2


# ---------------------------------------------------------------- context rot
def test_suppress_outside_keeps_exactly_the_boxes():
    im = Image.fromarray(np.full((40, 60, 3), 200, np.uint8))
    a = np.asarray(suppress_outside(im, [[10, 5, 20, 15], [40, 30, 50, 40]]))
    assert a[5:15, 10:20].min() == 200 and a[30:40, 40:50].min() == 200
    assert (a > 0).any(-1).sum() == 100 + 100                                # nothing else survives
    assert a.shape == (40, 60, 3)


def test_suppress_item_without_boxes_is_an_error(vstar):
    it = next(iter(get_benchmark("vstar").items(load_rows(vstar))))
    it.meta.pop("bbox")
    assert suppress_item(it).error.startswith("no target box")


def test_suppression_probe_runs_and_tables(vstar, tmp_path):
    truth = {it.id: it.answer for it in get_benchmark("vstar").items(load_rows(vstar))}
    def answer_if_suppressed(model, processor, items, bench, mnt, **kw):   # "right only without context"
        return [{"raw": truth[it.id] if (np.asarray(it.images[0]).sum(-1) == 0).mean() > 0.5 else "?", "passes": 1, "new_tokens": 1}
                for it in items]
    evaluate(None, None, "vstar", tmp_path / "full", source=vstar, mode=answer_if_suppressed, progress=False)
    evaluate(None, None, "vstar", tmp_path / "sup", source=vstar, mode=answer_if_suppressed, transform=suppress_item, progress=False)
    t = suppression_table(tmp_path / "full", tmp_path / "sup")
    assert t["full"]["overall"] == 0.0 and t["suppressed"]["overall"] == 100.0
    assert t["flips"] == {"both": 4, "gained": 4, "lost": 0}


def test_grounding_analysis_by_hand():
    recs = [dict(correct=c, g_iou=v) for c, v in [(True, 0.9), (True, 0.5), (False, 0.0), (False, 0.2), (True, 0.0)]]
    g = grounding_vs_correctness(recs)
    assert g["correct"] == {"mean_iou": round(1.4 / 3, 4), "iou>=0.5": 66.67, "n": 3}
    assert g["wrong"] == {"mean_iou": 0.1, "iou>=0.5": 0.0, "n": 2}
    assert g["acc | IoU 0"] == {"accuracy": 50.0, "n": 2}
    assert g["acc | IoU (0, 0.5)"] == {"accuracy": 0.0, "n": 1}
    assert g["acc | IoU [0.5, 1]"] == {"accuracy": 100.0, "n": 2}
    assert [iou_bucket(v) for v in (0, 1e-9, 0.4999, 0.5, 1)] == ["0", "(0, 0.5)", "(0, 0.5)", "[0.5, 1]", "[0.5, 1]"]


def test_needle_probe_items_and_curve(tmp_path):
    probe = NeedleProbe("needle", fracs=(0.001, 0.05), distractors=(0, 6), per_cell=2, canvas=(320, 240))
    items = list(probe.items(probe.load()))
    assert len(items) == 8 and len({it.id for it in items}) == 8
    again = list(probe.items(probe.load()))
    assert all(np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0])) for a, b in zip(items, again))  # seeded
    for it in items:
        x1, y1, x2, y2 = it.meta["log"]["needle_box"]
        frac = (x2 - x1) * (y2 - y1) / (320 * 240)
        assert 0.3 * it.meta["log"]["frac"] < frac <= 1.2 * it.meta["log"]["frac"]     # side rounded to whole pixels
        assert it.answer in it.options and len(set(it.options.values())) == 4
    truth = {it.id: it.answer for it in items}
    evaluate(None, None, probe, tmp_path / "run", progress=False,
             mode=lambda m, p, its, b, n, **k: [{"raw": truth[i.id] if i.meta["log"]["frac"] > 0.01 else "?", "passes": 1, "new_tokens": 1} for i in its])
    curve = needle_curve(RunLog(tmp_path / "run" / "predictions.jsonl").of("needle"))
    assert curve.loc[0.05].tolist() == [100.0, 100.0] and curve.loc[0.001].tolist() == [0.0, 0.0]
