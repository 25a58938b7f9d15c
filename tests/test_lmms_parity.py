"""`protocol="lmms"` against lmms-eval 0.7.3's own scoring code, item by item and in aggregate, on a corpus of 233
hand-written completions; `protocol="locus"` against the corpus's hand labels. Nothing here calls a network."""
import json, math
from pathlib import Path

import numpy as np
import pytest

from locus.answers import REASONING_TAGS, extract_box, extract_letter, extract_yes_no, lmms_eval_reference
from locus.evaluate import Ctx, Item, get_benchmark

CORPUS = [json.loads(l) for l in (Path(__file__).parent / "fixtures" / "answer_corpus.jsonl").read_text().splitlines()]
MC = [c for c in CORPUS if c["kind"] == "mc"]
YN = [c for c in CORPUS if c["kind"] == "yesno"]
BOX = [c for c in CORPUS if c["kind"] == "box"]


@pytest.fixture(scope="module")
def ref(): return lmms_eval_reference()


def strip(ref, text): return ref.reasoning.strip_reasoning_tags(text, [list(p) for p in REASONING_TAGS])


def test_corpus_covers_every_family():
    assert len(CORPUS) >= 150 and len({c["id"] for c in CORPUS}) == len(CORPUS)
    fams = {c["family"] for c in CORPUS}
    assert {"letters", "words", "think", "empty", "truncated", "yesno", "box_norm1", "box_norm1000", "box_pixels",
            "box_swapped"} <= fams


def _mc_item(c): return Item(id=c["id"], images=[], question="", answer=c["truth"], options=c["options"], category="x")


def test_vstar_item_by_item_and_aggregate(ref):
    bench = get_benchmark("vstar", protocol="lmms")
    items = [c for c in MC if len(c["options"]) == 4 and c["truth"] in "ABCD"]
    assert len(items) >= 80
    ours, theirs = [], []
    for k, c in enumerate(items):
        doc = {"text": "Q? " + " ".join(f"({l}) {v}" for l, v in c["options"].items()), "label": c["truth"],
               "question_id": c["id"], "category": ("direct_attributes", "relative_position")[k % 2]}
        t = ref.vstar.vstar_process_results(doc, [strip(ref, c["text"])])["vstar_overall_acc"]
        s = bench.score(_mc_item(c), c["text"], Ctx())
        assert (s["parsed"], float(s["correct"])) == (t["prediction"], t["score"]), c["id"]
        ours.append(dict(s, category=doc["category"])); theirs.append(t)
    assert bench.metrics(ours)["overall"] == round(ref.vstar.vstar_aggregate_results(theirs), 2)


def test_hrbench_item_by_item_and_aggregate(ref):
    bench = get_benchmark("hrbench4k", protocol="lmms")
    ours, theirs, judged = [], [], 0
    for k, c in enumerate(MC):
        text = strip(ref, c["text"])
        s = bench.score(_mc_item(c), c["text"], Ctx())
        inferred = ref.hrbench.hrbench_evaluator.can_infer(text.strip(), dict(c["options"]))
        if not inferred:                       # lmms-eval would call its GPT judge here: we mark, count, score wrong
            assert s["judge"] and s["parsed"] is None and not s["correct"], c["id"]; judged += 1; continue
        doc = {"answer": c["truth"], "question": "Q?", "category": ("single", "cross")[k % 2], "cycle_category": f"c{k // 3}",
               "index": k, **c["options"]}
        t = ref.hrbench.hrbench_process_results(doc, [text])["average"]
        assert (s["parsed"], int(s["correct"])) == (inferred, t["gpt_score"]), c["id"]
        ours.append(dict(s, category=doc["category"], cycle_category=doc["cycle_category"])); theirs.append(t)
    assert 10 <= judged < len(MC) - 50
    m = bench.metrics(ours)
    assert m["average"] == round(100 * ref.hrbench.hrbench_aggregate_results(theirs, None), 2)
    for cat in ("single", "cross"):
        assert m[cat] == round(100 * ref.hrbench.hrbench_aggregate_results([t for t, o in zip(theirs, ours) if o["category"] == cat], None), 2)
    assert bench.metrics([dict(s, judge=True) for s in ours[:3]])["judge_items"] == 3


def test_mme_realworld_item_by_item_and_aggregate(ref):
    bench = get_benchmark("mme_realworld_lite", protocol="lmms")
    cats = ["Perception/Remote Sensing", "Reasoning/Autonomous_Driving", "Perception/Monitoring", "Perception/OCR with Complex Context"]
    ours, theirs = [], []
    for k, c in enumerate(MC):
        doc = {"index": k, "category": cats[k % 4], "l2-category": ("object/attribute", "counting")[k % 2], "answer": c["truth"]}
        t = ref.mme.mme_realworld_process_results(doc, [strip(ref, c["text"])])["mme_realworld_score"]
        it = _mc_item(c); it.meta.update(task=t["category"], subtask=t["sub_category"])
        s = bench.score(it, c["text"], Ctx())
        assert (s["parsed"] or "") == t["pred_answer"], c["id"]
        ok = t["pred_answer"].lower() == t["answer"].lower() or t["answer"].lower() in t["pred_answer"].lower()
        assert s["correct"] == ok, c["id"]
        ours.append(dict(s, task=t["category"], subtask=t["sub_category"])); theirs.append(t)
    assert bench.metrics(ours)["overall"] == round(100 * ref.mme.mme_realworld_aggregate_results(theirs), 2)
    assert sum(s["parsed"] == "A" for s, c in zip(ours, MC) if not c["text"].strip()) >= 3    # a blank reads "A" (lmms-eval)


def test_pope_item_by_item_and_aggregate(ref):
    bench = get_benchmark("pope_adv", protocol="lmms")
    ours, theirs = [], []
    for c in YN:
        t = ref.pope.pope_process_results({"question_id": c["id"], "answer": c["truth"]}, [strip(ref, c["text"])])
        it = Item(id=c["id"], images=[], question="", answer=c["truth"], category="adversarial")
        s = bench.score(it, c["text"], Ctx())
        assert (s["parsed"], float(s["correct"])) == (t["pope_accuracy"]["prediction"], t["pope_accuracy"]["score"]), c["id"]
        ours.append(dict(s, target=c["truth"], category="adversarial")); theirs.append(t)
    m = bench.metrics(ours)["overall"]
    agg = {"accuracy": "pope_aggregate_accuracy", "precision": "pope_aggregate_precision", "recall": "pope_aggregate_recall",
           "f1": "pope_aggregate_f1_score", "yes_ratio (truth)": "pope_aggregate_yes_ratio"}
    key = {"accuracy": "pope_accuracy", "precision": "pope_precision", "recall": "pope_recall", "f1": "pope_f1_score",
           "yes_ratio (truth)": "pope_yes_ratio"}
    for ours_key, fn in agg.items():
        assert m[ours_key] == round(100 * getattr(ref.pope, fn)([t[key[ours_key]] for t in theirs]), 2), ours_key


def test_refcoco_item_by_item_and_aggregate(ref):
    bench = get_benchmark("refcoco_val", protocol="lmms")
    ours, theirs = [], []
    for c in BOX:
        doc = {"answer": "the thing", "question_id": c["id"], "bbox": c["truth"]}
        t = ref.refcoco.refcoco_bbox_rec_process_result(doc, [strip(ref, c["text"].split("ASSISTANT:")[0])])["refcoco_IoU"]
        it = Item(id=c["id"], images=[], question="", answer=c["truth"], meta={"size": tuple(c["size"])})
        s = bench.score(it, c["text"], Ctx())
        assert s["parsed"] == [round(v, 4) for v in t["pred"]], c["id"]
        try: want = ref.refcoco.compute_iou(t["bbox"], t["pred"])
        except ZeroDivisionError: want = 0.0                 # lmms-eval's run stops on this item; we score it 0
        assert math.isclose(s["iou"], round(want, 4), abs_tol=1e-9) and s["center"] == ref.refcoco.compute_center_accuracy(t["bbox"], t["pred"]), c["id"]
        ours.append(s); theirs.append(t)
    ok = [t for t in theirs if _union(t) != 0]
    assert len(ok) >= len(theirs) - 2
    m = bench.metrics([o for o, t in zip(ours, theirs) if _union(t) != 0])
    for name, fn in (("acc@0.1", "refcoco_bbox_rec_acc01"), ("acc@0.3", "refcoco_bbox_rec_acc03"), ("acc@0.5", "refcoco_bbox_rec_acc05"),
                     ("acc@0.7", "refcoco_bbox_rec_acc07"), ("acc@0.9", "refcoco_bbox_rec_acc09"), ("center_acc", "refcoco_bbox_rec_center_acc")):
        assert m[name] == round(100 * getattr(ref.refcoco, fn)(ok), 2), name
    assert math.isclose(m["miou"], round(100 * np.mean([round(ref.refcoco.compute_iou(t["bbox"], t["pred"]), 4) for t in ok]), 2), abs_tol=0.011)


def _union(t):
    g, p = t["bbox"], t["pred"]
    inter = max(0, min(g[2], p[2]) - max(g[0], p[0])) * max(0, min(g[3], p[3]) - max(g[1], p[1]))
    return (g[2] - g[0]) * (g[3] - g[1]) + (p[2] - p[0]) * (p[3] - p[1]) - inter


@pytest.mark.parametrize("c", CORPUS, ids=[c["id"] for c in CORPUS])
def test_locus_reads_the_hand_label(c):
    got = {"mc": lambda: extract_letter(c["text"], c["options"]), "yesno": lambda: extract_yes_no(c["text"]),
           "box": lambda: extract_box(c["text"])}[c["kind"]]()
    want = c["locus"]
    if isinstance(want, list): assert got is not None and np.allclose(got, want), (c["text"], got, want)
    else: assert got == want, (c["text"], c.get("note"))


def test_locus_protocol_scores_through_the_benchmarks():
    """The same hand labels through `Benchmark.score` (the code a run uses), not just the readers."""
    for c in MC:
        s = get_benchmark("mme_realworld").score(_mc_item(c), c["text"], Ctx())
        assert s["parsed"] == c["locus"] and s["correct"] == (c["locus"] == c["truth"]), c["id"]
    for c in YN:
        s = get_benchmark("pope").score(Item(id="0", images=[], question="", answer=c["truth"]), c["text"], Ctx())
        assert s["parsed"] == c["locus"], c["id"]
