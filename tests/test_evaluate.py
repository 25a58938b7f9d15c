"""locus.evaluate: loaders on fixtures in each upstream schema, answer extraction, metrics by hand, resume after a
real kill, bad images, batched == one-at-a-time greedy generation, compare flips, the CLI."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)   # 2 shared cores: one thread avoids OpenMP contention (see bench/eval_bench.py)
from PIL import Image

from locus.boxes import convert_box, resized_size, iou
from locus.answers import center_in
from locus.answers import accuracy, box_metrics, cycle_mean, extract_letter, extract_yes_no, pope_metrics
from locus.benchmarks import BENCHMARKS, Ctx, get_benchmark, item_messages, load_image, load_rows
from locus.evaluate import RunLog, compare_cli, compare_runs, eval_cli, evaluate, flips, generate, write_metrics
from locus.fixtures import write_fixture

UPSTREAM = {  # column names of each hub data set, in hub order (lmms-eval task yaml: dataset_path)
    "vstar": ["image", "text", "label", "question_id", "category", "bbox", "target_object"],
    "hrbench4k": ["index", "question", "answer", "category", "A", "B", "C", "D", "image", "cycle_category"],
    "hrbench8k": ["index", "question", "answer", "category", "A", "B", "C", "D", "image", "cycle_category"],
    "mme_realworld": ["index", "question", "multi-choice options", "answer", "category", "l2-category", "bytes"],
    "mme_realworld_lite": ["index", "question", "multi-choice options", "answer", "category", "l2-category", "bytes"],
    "pope": ["id", "question_id", "question", "answer", "image_source", "image", "category"],
    "refcoco_val": ["question_id", "image", "question", "answer", "segmentation", "bbox", "iscrowd", "file_name"],
    "refcoco+_testA": ["question_id", "image", "question", "answer", "segmentation", "bbox", "iscrowd", "file_name"],
    "refcocog_test": ["question_id", "image", "question", "answer", "segmentation", "bbox", "iscrowd", "file_name"],
}


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixtures")
    for name in UPSTREAM: write_fixture(name, root / name, n=4, corrupt=[1], max_side=320)
    return root


@pytest.fixture(scope="module")
def tiny():
    from locus.testing import tiny_qwen25_vl
    return tiny_qwen25_vl(seed=0)


def scripted(answers, default="A"):
    "An inference mode that answers from a dict id -> text (else `default`), counting the items it was asked."
    asked = []
    def predict(model, processor, items, bench, max_new_tokens, **kw):
        asked.extend(it.id for it in items)
        return [{"raw": answers.get(it.id, default), "passes": 1, "new_tokens": 1} for it in items]
    predict.asked = asked
    return predict


# ---------------------------------------------------------------- loaders
@pytest.mark.parametrize("name", list(UPSTREAM))
def test_loader_on_upstream_schema(fx, name):
    b = get_benchmark(name)
    rows = load_rows(fx / name, b.config, b.split)
    assert rows.column_names == UPSTREAM[name]
    items = list(b.items(rows))
    per_row = 2 if name.startswith("refcoco") else 1        # RefCOCO: one item per referring expression
    assert len(items) == 4 * per_row
    errors = [it.error is not None for it in items]
    assert errors == [False] * per_row + [True] * per_row + [False] * 2 * per_row   # row 1 is corrupt
    ok = items[0]
    assert ok.images[0].mode == "RGB" and ok.question
    if name.startswith("refcoco"):
        assert len(ok.answer) == 4 and all(0 <= v <= 1 for v in ok.answer)
    elif name == "pope": assert ok.answer in ("yes", "no") and ok.options == {"yes": "yes", "no": "no"}
    else: assert ok.answer in "ABCDE" and len(ok.options) >= 4


def test_registry_uses_lmms_eval_hub_ids():
    """The hub ids, configs and splits are lmms-eval 0.7.3's own (read from its task yamls), the old ids the fallbacks."""
    import importlib.util, yaml
    tasks = Path(importlib.util.find_spec("lmms_eval").submodule_search_locations[0]) / "tasks"
    def task_yaml(*parts):
        text = "".join(l for l in (tasks.joinpath(*parts)).read_text().splitlines(True) if "!function" not in l)
        return yaml.safe_load(text)
    assert task_yaml("vstar_bench", "_default_template_yaml")["dataset_path"] == BENCHMARKS["vstar"].hub_id == "lmms-lab-encoder/vstar-bench"
    assert task_yaml("pope", "pope.yaml")["dataset_path"] == BENCHMARKS["pope"].hub_id
    for name, f in (("pope_adv", "pope_adv.yaml"), ("pope_pop", "pope_pop.yaml"), ("pope_random", "pope_random.yaml")):
        y, b = task_yaml("pope", f), BENCHMARKS[name]
        assert (y["dataset_path"], y["dataset_name"], y["test_split"].strip()) == (b.hub_id, b.config, b.split) and b.config == "Full"
    for name, folder in (("refcoco_val", "refcoco"), ("refcoco+_val", "refcoco+"), ("refcocog_val", "refcocog")):
        y = task_yaml(folder, "_default_template_bbox_rec_yaml")
        assert y["dataset_path"] == BENCHMARKS[name].hub_id and BENCHMARKS[name].fallback_ids == (y["dataset_path"].replace("-encoder", ""),)
    y = task_yaml("hrbench", "hrbench8k.yaml")
    assert (y["dataset_path"], y["dataset_name"], y["test_split"]) == (BENCHMARKS["hrbench8k"].hub_id, BENCHMARKS["hrbench8k"].config, BENCHMARKS["hrbench8k"].split)
    y = task_yaml("mme_realworld", "mme_realworld_lite.yaml")
    assert (y["dataset_path"], y["test_split"], y["generation_kwargs"]["max_new_tokens"]) == \
        (BENCHMARKS["mme_realworld_lite"].hub_id, BENCHMARKS["mme_realworld_lite"].split, BENCHMARKS["mme_realworld_lite"].max_new_tokens)
    assert task_yaml("vstar_bench", "_default_template_yaml")["generation_kwargs"]["max_new_tokens"] == BENCHMARKS["vstar"].max_new_tokens
    assert BENCHMARKS["vstar"].fallback_ids == ("lmms-lab/vstar-bench",) and BENCHMARKS["pope"].fallback_ids == ("lmms-lab/POPE",)
    with pytest.raises(ValueError, match="Unknown benchmark 'vstr' \\(did you mean 'vstar'"): get_benchmark("vstr")


def test_hub_id_fallback(monkeypatch):
    """When the new id cannot be loaded (not cached, offline), the old one is tried; when none loads, one clear line."""
    import locus.benchmarks as ev
    tried = []
    def fake(src, config, split, limit):
        tried.append(src)
        if src.startswith("lmms-lab-encoder/"): raise FileNotFoundError(f"Dataset '{src}' doesn't exist on the Hub or cannot be accessed")
        return ["row"]
    monkeypatch.setattr(ev, "load_rows", fake)
    assert get_benchmark("pope").load() == ["row"] and tried == ["lmms-lab-encoder/POPE", "lmms-lab/POPE"]
    monkeypatch.setattr(ev, "load_rows", lambda *a: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(FileNotFoundError, match=r"vstar: none of its hub ids loads \(lmms-lab-encoder/vstar-bench: ConnectionError: offline; lmms-lab/vstar-bench: .*--sources vstar=PATH"):
        get_benchmark("vstar").load()


def test_generation_limits_follow_protocol_and_model():
    v, h = get_benchmark("vstar"), get_benchmark("hrbench4k")
    assert (v.generation_limit(), v.generation_limit(thinking=True)) == (16, 1024)
    assert (h.generation_limit(), get_benchmark("hrbench4k", protocol="lmms").generation_limit()) == (256, 32768)
    assert get_benchmark("refcoco_val", protocol="lmms").generation_limit(thinking=True) == 32768
    with pytest.raises(ValueError, match="protocol 'lmm'"): get_benchmark("vstar", protocol="lmm")


def test_load_rows_local_file_and_save_to_disk(fx, tmp_path):
    from datasets import load_dataset
    parquet = next((fx / "pope" / "data").glob("*.parquet"))
    assert len(load_rows(parquet)) == 4
    ds = load_dataset("parquet", data_files=str(parquet), split="train")
    ds.save_to_disk(str(tmp_path / "saved"))
    assert load_rows(tmp_path / "saved", limit=2).column_names == UPSTREAM["pope"]


def test_load_image_never_raises():
    im = Image.new("RGB", (8, 6))
    assert load_image(im)[0].size == (8, 6)
    for bad in (None, b"not an image", {"bytes": None, "path": None}, "!!notbase64!!" * 400, 42, {"path": "/nonexistent.png"}):
        out, why = load_image(bad)
        assert out is None and why


# ---------------------------------------------------------------- answers
@pytest.mark.parametrize("text,letter", [("A", "A"), ("(B) because", "B"), ("C.", "C"), ("The answer is D", "D"),
                                         ("answer: b", "B"), ("<think>A or B?</think><answer>(C)</answer>", "C"),
                                         ("Based on the image", None), ("", None), ("E", None), ("I think it is B", "B")])
def test_extract_letter(text, letter):
    assert extract_letter(text) == letter


def test_extract_letter_five_options():
    assert extract_letter("E", "ABCDE") == "E"
    assert extract_letter("The best answer is: E", "ABCDE") == "E"


@pytest.mark.parametrize("text,yn", [("Yes", "yes"), ("no.", "no"), ("No, there is not.", "no"), ("There is a yes", "yes"),
                                     ("yes or no", "yes"), ("It is either yes or no", None), ("a cat", None)])
def test_extract_yes_no(text, yn):
    assert extract_yes_no(text) == yn


# ---------------------------------------------------------------- metrics by hand
def test_pope_metrics_by_hand():
    pairs = [("yes", "yes"), ("yes", "yes"), ("yes", "no"), ("no", "yes"), (None, "yes"), ("no", "no"), ("no", "no")]
    recs = [dict(parsed=p, target=t, correct=p == t) for p, t in pairs]
    # TP 2, FP 1, positives 4, correct 4 of 7, yes predictions 3 of 7
    p, r = 2 / 3, 2 / 4
    assert pope_metrics(recs) == {"accuracy": round(400 / 7, 2), "precision": round(100 * p, 2), "recall": 50.0,
                                  "f1": round(100 * 2 * p * r / (p + r), 2), "yes_ratio": round(300 / 7, 2), "n": 7}


def test_accuracy_and_hrbench_cycle_mean_by_hand():
    recs = [dict(correct=c, category=k, cycle_category=g) for c, k, g in
            [(True, "single", "a"), (False, "single", "a"), (True, "cross", "b"), (True, "cross", "b"), (False, "cross", "c")]]
    assert accuracy(recs) == {"overall": 60.0, "n": 5, "cross": round(200 / 3, 2), "single": 50.0, "n_by": {"cross": 3, "single": 2}}
    assert cycle_mean(recs) == round(100 * (0.5 + 1.0 + 0.0) / 3, 2)
    m = get_benchmark("hrbench4k").metrics(recs)
    assert m["single"] == 50.0 and m["cross"] == 50.0 and m["average"] == 50.0


def test_box_metrics_by_hand():
    recs = [dict(iou=v, center=c) for v, c in [(1.0, True), (0.6, True), (0.5, False), (0.2, True), (0.0, False)]]
    assert box_metrics(recs) == {"miou": 46.0, "acc@0.1": 80.0, "acc@0.3": 60.0, "acc@0.5": 60.0, "acc@0.7": 20.0,
                                 "acc@0.9": 20.0, "center_acc": 60.0, "n": 5}


def test_refcoco_scoring_in_the_model_frame(fx):
    b = get_benchmark("refcoco_val")
    it = next(iter(b.items(load_rows(fx / "refcoco_val", split="val"))))
    W, H = it.meta["size"]
    budget = {"min_pixels": 56 * 56, "max_pixels": 224 * 224, "factor": 28}
    rs = resized_size(W, H, **budget)
    truth_resized = convert_box(it.answer, "norm1", "resized", (W, H), rs)
    s = b.score(it, "<answer>[%.1f, %.1f, %.1f, %.1f]</answer>" % tuple(truth_resized), Ctx("resized", budget))
    assert s["correct"] and s["iou"] > 0.98 and s["center"]
    half = [truth_resized[0], truth_resized[1], (truth_resized[0] + truth_resized[2]) / 2, truth_resized[3]]
    s = b.score(it, str(half), Ctx("resized", budget))
    assert abs(s["iou"] - 0.5) < 0.03
    s = b.score(it, "somewhere on the left", Ctx("resized", budget))
    assert s == dict(parsed=None, correct=False, iou=0.0, center=False, why="no box in the answer")
    s = b.score(it, "[0, 0, 1, 1]", Ctx("resized", budget))   # the whole image: its centre is in no small box
    assert s["center"] is False or center_in(it.answer, [0, 0, 1, 1])
    lm = get_benchmark("refcoco_val", protocol="lmms")
    assert lm.score(it, str(it.answer), Ctx("resized", budget))["iou"] > 0.999


def test_proxy_val_rows_by_hand(tmp_path):
    """Rows as the data issue builds them: full image pre-resized to the model's view, the crop, box in that frame."""
    import skimage.data
    from datasets import Dataset, Features, Image as HFImage, List, Value
    photo = Image.fromarray(skimage.data.coffee())
    W, H = photo.size
    rs = resized_size(W, H, 56 * 56, 224 * 224)
    rows = []
    for k, box in enumerate([(100, 120, 180, 200), (300, 40, 340, 70)]):
        sol = convert_box(list(box), "pixels", "resized", (W, H), rs)
        rows.append(dict(prompt=[{"role": "user", "content": [{"type": "image", "text": None}, {"type": "image", "text": None},
                                 {"type": "text", "text": "Find image 2 in image 1; answer [x1, y1, x2, y2]."}]}],
                         images=[photo.resize(rs), photo.crop(box)], solution=sol, size_class=("small", "tiny")[k]))
    msg = {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
    feats = Features({"prompt": List(msg), "images": List(HFImage()), "solution": List(Value("float64")), "size_class": Value("string")})
    Dataset.from_list(rows, features=feats).save_to_disk(str(tmp_path / "proxy"))
    b = get_benchmark("proxy_val")
    items = list(b.items(load_rows(tmp_path / "proxy", split="validation")))
    assert [len(it.images) for it in items] == [2, 2] and items[0].images[0].size == rs
    assert item_messages(items[0])[0]["content"][0]["type"] == "image"
    exact = "<think>.</think><answer>[%g, %g, %g, %g]</answer>" % tuple(rows[0]["solution"])
    m = evaluate(None, None, b, tmp_path / "run", source=tmp_path / "proxy", progress=False,
                 mode=scripted({"0": exact, "1": "no idea"}))
    assert m["metrics"]["miou"] == 50.0 and m["metrics"]["acc@0.5"] == 50.0 and m["unparsed"] == 1
    assert m["metrics"]["small"]["miou"] == 100.0 and m["metrics"]["tiny"]["miou"] == 0.0


# ---------------------------------------------------------------- generation
def test_batched_equals_one_at_a_time(fx, tiny):
    model, processor = tiny
    items = [it for it in get_benchmark("vstar").items(load_rows(fx / "vstar")) if it.error is None]
    assert len({it.images[0].size for it in items}) > 1          # different sizes: different lengths, real padding
    side = processor.tokenizer.padding_side
    batched = generate(model, processor, [item_messages(it) for it in items], [it.images for it in items], 10)
    single = [generate(model, processor, [item_messages(it)], [it.images], 10)[0] for it in items]
    assert batched == single
    assert processor.tokenizer.padding_side == side                 # the caller's setting is restored


# ---------------------------------------------------------------- JSONL, resume, bad data
KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from locus.evaluate import evaluate
    def predict(model, processor, items, bench, max_new_tokens, **kw):   # the resumed run's mode has the same name
        time.sleep(0.4)
        return [{"raw": "A", "passes": 1, "new_tokens": 1} for it in items]
    evaluate(None, None, "vstar", sys.argv[1], source=sys.argv[2], batch_size=1, mode=predict, progress=False)
    """)


def test_resume_after_a_real_kill(tmp_path):
    src = write_fixture("vstar", tmp_path / "vstar", n=12, corrupt=[3], max_side=256)
    run = tmp_path / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(run), str(src)], env=env)
    log = run / "predictions.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 4): time.sleep(0.1)
    p.send_signal(signal.SIGKILL); p.wait()
    before = [json.loads(l)["id"] for l in log.read_text().splitlines()]
    assert 4 <= len(before) < 12, before
    with open(log, "a") as f: f.write('{"bench": "vstar", "id": "11", "raw": "A", "cor')   # a line cut mid-write
    mode = scripted({})
    m = evaluate(None, None, "vstar", run, source=src, mode=mode, progress=False)
    ids = [json.loads(l)["id"] for l in log.read_text().splitlines()]
    assert sorted(ids, key=int) == [str(k) for k in range(12)]                  # every item exactly once
    assert set(mode.asked) == {str(k) for k in range(12)} - set(before) - {"3"}  # only unfinished items re-run
    assert m["n"] == 12 and m["image_errors"] == 1
    again = scripted({})
    assert evaluate(None, None, "vstar", run, source=src, mode=again, progress=False) == m and again.asked == []


def test_missing_and_corrupt_images_are_counted(tmp_path):
    src = write_fixture("pope", tmp_path / "pope", n=5, corrupt=[0], max_side=256)
    from datasets import load_dataset
    f = next((src / "data").glob("*.parquet"))
    ds = load_dataset("parquet", data_files=str(f), split="train").cast_column("image", __import__("datasets").Image(decode=False))
    rows = ds.to_list(); rows[2]["image"] = None
    from datasets import Dataset
    Dataset.from_list(rows, features=ds.features).to_parquet(str(f))
    m = evaluate(None, None, "pope", tmp_path / "run", source=src, mode=scripted({}), progress=False)
    assert m["n"] == 5 and m["image_errors"] == 2
    recs = {r["id"]: r for r in RunLog(tmp_path / "run" / "predictions.jsonl").of("pope")}
    assert recs["0"]["why"].startswith("corrupt image") and recs["2"]["why"].startswith("missing image")
    assert not recs["0"]["correct"] and recs["0"]["error"] == "image"


def test_unparseable_is_wrong_with_reason_and_inference_errors_are_isolated(fx, tmp_path):
    def flaky(model, processor, items, bench, max_new_tokens, **kw):
        if any(it.id == "2" for it in items): raise RuntimeError("processor rejected the image")
        return [{"raw": "no clue", "passes": 1, "new_tokens": 2} for it in items]
    m = evaluate(None, None, "vstar", tmp_path / "run", source=fx / "vstar", batch_size=4, mode=flaky, progress=False)
    recs = {r["id"]: r for r in RunLog(tmp_path / "run" / "predictions.jsonl").of("vstar")}
    assert recs["2"]["error"] == "inference" and "processor rejected" in recs["2"]["why"]
    assert recs["0"]["why"] == "no option chosen (no option letter or option text)" and recs["0"]["correct"] is False
    assert (m["n"], m["image_errors"], m["inference_errors"], m["unparsed"]) == (4, 1, 1, 2)


# ---------------------------------------------------------------- compare
def test_flips_by_hand():
    a = [dict(id=i, correct=c) for i, c in zip("abcde", [1, 1, 0, 0, 1])]
    b = [dict(id=i, correct=c) for i, c in zip("abcdf", [1, 0, 1, 1, 0])]
    assert flips(a, b) == {"both": 4, "gained": 2, "lost": 1}


def test_compare_runs_and_cli(fx, tmp_path):
    truth = {it.id: it.answer for it in get_benchmark("vstar").items(load_rows(fx / "vstar")) if it.error is None}
    ids = sorted(truth)
    oracle = {i: truth[i] for i in ids[:2]}                                           # right on the first two
    evaluate(None, None, "vstar", tmp_path / "base", source=fx / "vstar", mode=scripted({ids[0]: truth[ids[0]]}, "?"), progress=False)
    evaluate(None, None, "vstar", tmp_path / "locus", source=fx / "vstar", mode=scripted(oracle, "?"), progress=False)
    wrong = {i: "B" if truth[i] != "B" else "C" for i in ids}
    evaluate(None, None, "vstar", tmp_path / "worse", source=fx / "vstar", mode=scripted(wrong), progress=False)
    table = compare_runs(tmp_path / "base", tmp_path / "locus", tmp_path / "worse")
    assert "4 items: +1 gained, -0 lost" in table and "4 items: +0 gained, -1 lost" in table
    base = json.loads((tmp_path / "base" / "metrics.json").read_text())["vstar"]["metrics"]["overall"]
    assert f"| vstar | overall | {base:.2f} | {base + 25:.2f} | 0.00 | +25.00 | {-base:+.2f} |" in table
    out = subprocess.run([sys.executable, "-c", "from locus.evaluate import compare_cli; compare_cli()",
                          str(tmp_path / "base"), str(tmp_path / "locus")], capture_output=True, text=True)
    assert out.returncode == 0 and "+1 gained, -0 lost" in out.stdout, out.stderr


# ---------------------------------------------------------------- CLI
def test_cli_help_and_no_heavy_imports():
    out = subprocess.run([sys.executable, "-c", "from locus.evaluate import eval_cli; eval_cli()", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "--benchmarks" in out.stdout and "comma-separated benchmark names" in out.stdout
    out = subprocess.run([sys.executable, "-c", "import sys, locus.evaluate; print('torchvision' in sys.modules, 'bitsandbytes' in sys.modules)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "False False", out.stderr


def test_eval_cli_end_to_end_on_the_tiny_model(fx, tmp_path, capsys):
    eval_cli(model="tiny", benchmarks="vstar,pope", out=str(tmp_path / "run"), quiet=True, max_new_tokens=4,
             sources=f"vstar={fx / 'vstar'},pope={fx / 'pope'}")
    printed = capsys.readouterr().out
    assert "| vstar | locus | overall |" in printed and "| pope | locus | overall/f1 |" in printed
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["vstar"]["n"] == 4 and metrics["pope"]["image_errors"] == 1
    assert (tmp_path / "run" / "metrics.md").read_text().count("| vstar |") == 3
    assert eval_cli(model="tiny", benchmarks="vstar", sources="pope=/x", out=str(tmp_path / "r2")) == 2
    assert "--sources names benchmarks not in --benchmarks: ['pope']" in capsys.readouterr().err


def _own_data(root):
    import skimage.data
    root.mkdir(parents=True, exist_ok=True)
    for name in ("coffee", "chelsea", "astronaut"):
        Image.fromarray(getattr(skimage.data, name)()).save(root / f"{name}.png")
    rows = [{"q": "What colour is the cup?", "choices": ["red", "white", "blue"], "gold": "white", "img": "coffee.png"},
            {"q": "What animal is this?", "choices": ["(A) dog", "(B) cat"], "gold": "B", "img": "chelsea.png"},
            {"q": "What is she wearing?", "choices": {"A": "a spacesuit", "B": "a dress"}, "gold": "A", "img": "astronaut.png"},
            {"q": "Is the cup red?", "choices": ["yes", "no"], "gold": "no", "img": "gone.png"}]
    (root / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "mine.jsonl"


def test_own_benchmark_through_the_cli(tmp_path, capsys):
    """A user's JSONL with their own column names, photos of different sizes, one missing image: run, resume, refuse."""
    from locus.cli import main
    data = _own_data(tmp_path / "data")
    cols = "question=q,options=choices,answer=gold,image=img"
    run = str(tmp_path / "run")
    argv = ["eval", "tiny", "--benchmarks", "mine", "--sources", f"mine={data}", "--columns", cols, "--out", run,
            "--max_new_tokens", "4", "--quiet"]
    assert main(argv) == 0
    recs = {r["id"]: r for r in RunLog(Path(run) / "predictions.jsonl").of("mine")}
    assert [recs[k]["target"] for k in "0123"] == ["B", "B", "A", "B"]
    assert recs["3"]["error"] == "image" and recs["3"]["why"] == f"not found: {(tmp_path / 'data' / 'gone.png').resolve()}"
    assert json.loads((Path(run) / "settings.json").read_text())["mine"]["kind"] == "mc"
    assert "| mine | locus | overall |" in capsys.readouterr().out
    assert main(argv) == 0                                                   # same settings: resumes, adds nothing
    assert len((Path(run) / "predictions.jsonl").read_text().splitlines()) == 4
    capsys.readouterr()
    assert main(argv + ["--protocol", "lmms"]) == 2                          # other settings: refused, the difference named
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its mine predictions were made with" in err and "protocol='locus' (now 'lmms')" in err
    assert main(argv[:6] + ["--out", str(tmp_path / "r3")]) == 2            # no --columns: the columns found, the mapping expected
    err = capsys.readouterr().err
    assert "no column for question (column 'question')" in err and "found columns: q, choices, gold, img" in err
    assert "--columns question=COLUMN" in err and err.count("\n") == 1
    assert main(argv[:6] + ["--columns", "questoin=q", "--out", str(tmp_path / "r4")]) == 2
    assert "unknown field(s) ['questoin']" in capsys.readouterr().err


def test_own_benchmark_yes_no_grounding_and_a_dataset_object(tmp_path, tiny):
    from datasets import Dataset
    from locus.own_benchmark import OwnBenchmark
    import skimage.data
    im = Image.fromarray(skimage.data.coffee())                            # 600 x 400
    ds = Dataset.from_list([{"question": "the cup", "answer": [150.0, 100.0, 300.0, 300.0], "image": {"bytes": _png(im), "path": None}},
                            {"question": "the saucer", "answer": [0.1, 0.5, 0.6, 0.9], "image": {"bytes": _png(im), "path": None}}])
    g = OwnBenchmark("boxes")
    items = list(g.items(g.load(ds)))
    assert g.kind == "grounding" and [round(v, 3) for v in items[0].answer] == [0.25, 0.25, 0.5, 0.75]
    assert [round(v, 3) for v in items[1].answer] == [0.1, 0.5, 0.6, 0.9]
    s = g.score(items[0], "[0.25, 0.25, 0.5, 0.75]", Ctx("resized", {"min_pixels": 3136, "max_pixels": 50176, "factor": 28}))
    assert s["iou"] > 0.999 and s["center"]
    yn = OwnBenchmark("yn", protocol="lmms")
    items = list(yn.items(yn.load(Dataset.from_list([{"question": "Is there a cup?", "answer": "Yes", "image": {"bytes": _png(im), "path": None}}]))))
    assert yn.kind == "yesno" and items[0].answer == "yes"
    assert yn.score(items[0], "Yes.", Ctx())["correct"] is False and yn.score(items[0], "yes", Ctx())["correct"] is True


def _png(im):
    import io
    b = io.BytesIO(); im.save(b, format="PNG"); return b.getvalue()


def test_run_folder_refuses_another_model_or_mode(fx, tmp_path, capsys):
    from locus.cli import main
    run = str(tmp_path / "run")
    base = ["eval", "tiny", "--benchmarks", "pope", "--sources", f"pope={fx / 'pope'}", "--out", run, "--max_new_tokens", "3", "--quiet"]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base + ["--mode", "dualfocus"]) == 2
    assert "mode='direct' (now 'dualfocus')" in capsys.readouterr().err
    from locus.evaluate import check_settings, RunMismatch
    with pytest.raises(RunMismatch, match="its pope predictions were made with model='tiny' \\(now 'other'\\)"):
        check_settings(run, "vstar", {"model": "other"}, RunLog(Path(run) / "predictions.jsonl"))


def test_lmms_protocol_records_pixels_and_truncation(fx, tmp_path, tiny):
    model, processor = tiny
    m = evaluate(model, processor, "vstar", tmp_path / "run", source=fx / "vstar", protocol="lmms", max_new_tokens=3, progress=False)
    meta = json.loads((tmp_path / "run" / "metrics.json").read_text())["vstar"]
    assert meta["settings"]["pixels"] == [200_704, 1_605_632] and meta["protocol"] == "lmms"
    recs = RunLog(tmp_path / "run" / "predictions.jsonl").of("vstar")
    assert all(r["protocol"] == "lmms" for r in recs)
    ran = [r for r in recs if r["error"] is None]
    assert all(r["truncated"] == (r["new_tokens"] == 3) for r in ran) and m["truncated"] == sum(r["truncated"] for r in ran)
    md = (tmp_path / "run" / "metrics.md").read_text()
    assert "| vstar | lmms | direct_attributes |" in md
    n_attr = sum(r["category"] == "direct_attributes" for r in recs)
    assert f"| vstar | lmms | direct_attributes | {m['metrics']['direct_attributes']:.2f} | {n_attr} |" in md   # its own n


def test_lora_adapter_and_merged_models_run_through_the_harness(fx, tiny, tmp_path):
    """A peft-wrapped model and a merged one go through the same code; a fresh LoRA (B = 0) must not change answers."""
    import copy
    from peft import LoraConfig, get_peft_model
    model, processor = tiny
    base = evaluate(model, processor, "vstar", tmp_path / "base", source=fx / "vstar", max_new_tokens=6, progress=False)
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).eval()
    lora = evaluate(peft_model, processor, "vstar", tmp_path / "lora", source=fx / "vstar", max_new_tokens=6, progress=False)
    merged = evaluate(peft_model.merge_and_unload(), processor, "vstar", tmp_path / "merged", source=fx / "vstar",
                      max_new_tokens=6, progress=False)
    raws = [[r["raw"] for r in sorted(RunLog(tmp_path / d / "predictions.jsonl").of("vstar"), key=lambda r: r["id"])]
            for d in ("base", "lora", "merged")]
    assert raws[0] == raws[1] == raws[2] and base["metrics"] == lora["metrics"] == merged["metrics"]


def test_locus_cli_dispatcher_runs_eval_and_compare(fx, tmp_path, capsys):
    """`locus eval` / `locus compare` through locus.cli.main, which parses with anno_parser and calls `__wrapped__`."""
    from locus.cli import main
    for name in ("a", "b"):
        assert main(["eval", "tiny", "--benchmarks", "pope", "--sources", f"pope={fx / 'pope'}", "--out",
                     str(tmp_path / name), "--quiet", "--max_new_tokens", "3"]) == 0
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "| pope | flips a -> b | 4 items: +0 gained, -0 lost |" in out      # same model, same answers


def test_image_size_is_bounded_and_odd_modes_convert(monkeypatch):
    "Benchmark images go through the same guards as training data: a pixel bound read from the header, and to_rgb."
    import io
    import numpy as np
    from PIL import Image
    import locus.benchmarks as E
    buf = io.BytesIO(); Image.new("RGB", (40, 30)).save(buf, format="PNG")
    monkeypatch.setattr(E, "MAX_IMAGE_PIXELS", 1000)
    im, why = E.load_image({"bytes": buf.getvalue(), "path": None})
    assert im is None and "too large" in why and "40x30" in why
    monkeypatch.undo()
    for src in (Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 10).astype(np.uint16)), Image.new("CMYK", (8, 8)),
                Image.new("LA", (8, 8)), Image.new("P", (8, 8))):
        im, why = E.load_image(src)
        assert why is None and im.mode == "RGB", (src.mode, why)


def test_two_local_copies_with_one_name_never_share_a_cache_entry(tmp_path):
    """Hub-style snapshot folders are read by their files' absolute paths: `a/hrbench4k` and `b/hrbench4k` differ."""
    a = write_fixture("hrbench4k", tmp_path / "a" / "hrbench4k", n=3)
    b = write_fixture("hrbench4k", tmp_path / "b" / "hrbench4k", n=5)
    bench = get_benchmark("hrbench4k")
    assert (len(bench.load(a)), len(bench.load(b)), len(bench.load(a))) == (3, 5, 3)
    c = write_fixture("hrbench4k", tmp_path / "a" / "hrbench4k", n=2, seed=1)   # the same folder, rewritten
    assert len(bench.load(c)) == 2
    with pytest.raises(ValueError, match="no split 'hrbench_8k'"): load_rows(a, "hrbench_version_split", "hrbench_8k")
