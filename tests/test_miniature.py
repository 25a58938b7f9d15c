"LOCUS in miniature (nbs/09_miniature.ipynb): the sets are the plan's, the gate reproduces the committed rows, `locus miniature` runs every stage as a user types it, and the verdict follows the pre-registered rule."
import json, os, re, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

from locus.microworld import SPLITS
from locus.miniature import (CANDIDATES, CONDITIONS, EVAL_SETS, SETS, choose_base, hierarchical_ci, make_set, mean_ci, read_jsonl,
                             verdict, write_jsonl)

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "runs" / "miniature2"
PLAN = json.loads((RUN / "plan.json").read_text())
LOCUS = str(Path(sys.executable).with_name("locus"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}

def seeds_named(text): return {int(s.replace(",", "")) for s in re.findall(r"\d{1,3}(?:,\d{3})+", text)}

def test_sets_are_the_plans():
    "Every gate item's set starts at the seeds plan.json names, holds the size it names, and the primary set is 1,000 test items."
    names = {"colour_larger": ["colour_larger"], "colour_size_gap": ["colour_tiny", "colour_small"], "ground_larger": ["ground_larger"],
             "proxy_val_miou": ["proxy_val"], "answer_balance": ["shape"]}
    for item, sets in names.items():
        assert {p[2] for s in sets for p in SETS[s][1]} <= seeds_named(PLAN["gate"][item]["set"]), item
        assert all(f"{p[1]} " in PLAN["gate"][item]["set"] for s in sets for p in SETS[s][1]), item
    primary = make_set("primary")
    assert len(primary) == 1000 and all(SPLITS["test"] <= e["seed"] < SPLITS["test"] + 10_000_000 for e in primary)
    assert {e["n_objects"] for e in primary} == {5, 6, 7} and {e["bucket"] for e in primary} == {"tiny", "small"}
    assert SETS["primary"][0] == "primary" and all(SETS[s][0] != "primary" for s in SETS if s != "primary")
    assert set(EVAL_SETS) <= set(SETS) and CONDITIONS == tuple(PLAN["rl"]["conditions"])

def test_mean_ci_covers_the_mean():
    m, lo, hi = mean_ci([1.0] * 30 + [0.0] * 70)
    assert m == 0.3 and 0.2 < lo < 0.3 < hi < 0.4
    assert mean_ci([1.0] * 10)[1:] == (1.0, 1.0)

def test_committed_verdict_is_the_rule_on_the_committed_files(tmp_path):
    "verdict.json is what `verdict` computes from the committed gate files; no base passed, so it is 'uninformative'."
    cands = {k: RUN / v for k, v in CANDIDATES.items()}
    committed = json.loads((RUN / "verdict.json").read_text())
    assert choose_base(cands) is None and committed["chosen_base"] is None and committed["verdict"] == "uninformative"
    for k, g in committed["gate"].items():
        gate = json.loads((cands[k] / "gate.json").read_text())
        assert g == dict(passed=gate["passed"], failed=[i for i, v in gate["gate"].items() if not v["passed"]])
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    for k, r in cands.items(): (tmp_path / CANDIDATES[k]).mkdir(exist_ok=True); (tmp_path / CANDIDATES[k] / "gate.json").write_text((r / "gate.json").read_text())
    assert verdict(tmp_path, {k: tmp_path / v for k, v in CANDIDATES.items()}) == committed

def test_readme_reports_the_verdict():
    "The README's miniature row states the committed verdict and why."
    v = json.loads((RUN / "verdict.json").read_text())
    row = next(l for l in (REPO / "README.md").read_text().splitlines() if l.startswith("| LOCUS in miniature"))
    assert f"verdict: {v['verdict']}" in row and ("no candidate base passed the gate" in row) == (v["chosen_base"] is None)
    vals = [a for root in (RUN, RUN / "b") for gg in [json.loads((root / "gate.json").read_text())]
            for a in (gg["gate"]["colour_larger"]["value"], gg["gate"]["colour_size_gap"]["value"]["tiny"], gg["gate"]["colour_size_gap"]["value"]["small"],
                      gg["primary_base"]["accuracy"])]
    span = f"({int(100 * min(vals))}-{int(np.ceil(100 * max(vals)))}% on colours, chance 10%)"   # the paragraph under the table
    assert span in " ".join((REPO / "README.md").read_text().split()), span

def made_up(root, locus_p, gate_ok, rise, rng):
    "An experiment folder with made-up runs: LOCUS at accuracy `locus_p`, its IoU reward rising by `rise`, SFT 0.31, CPT 0.30."
    (root / "plan.json").write_text(json.dumps(PLAN))
    (root / "gate.json").write_text(json.dumps({"passed": gate_ok, "gate": {k: {"passed": gate_ok} for k in PLAN["gate"] if k != "rule"}}))
    def run(name, p, miou):
        rows = [dict(set="primary", tier="primary", seed=i, correct=float(rng.random() < p)) for i in range(1000)]
        rows += [dict(set="primary_larger", tier="secondary", seed=i, correct=float(rng.random() < 0.8)) for i in range(600)]
        write_jsonl(rows + [dict(set="proxy_val", tier="secondary", seed=i, iou=miou) for i in range(50)], root / "eval" / name / "predictions.jsonl")
    run("base", 0.30, 0.10)
    for s in range(3):
        run(f"locus-s{s}", locus_p, 0.25); run(f"sft-s{s}", 0.31, 0.2); run(f"cpt-s{s}", 0.30, 0.1)
        write_jsonl([{"rewards/iou_reward/mean": 0.05 + rise * i / 199} for i in range(200)], root / f"locus-s{s}" / "metrics.jsonl")
    return root

@pytest.mark.parametrize("locus_p,gate_ok,rise,want", [(0.40, True, 0.2, "effect"), (0.32, True, 0.2, "null"),
                                                      (0.40, False, 0.2, "uninformative"), (0.40, True, 0.05, "uninformative")])
def test_verdict_follows_the_plans_rule(tmp_path, locus_p, gate_ok, rise, want):
    "On made-up runs the pre-registered rule turns gate, positive control and CIs into the verdict; the numbers are kept whatever it says."
    v = verdict(made_up(tmp_path, locus_p, gate_ok, rise, np.random.default_rng(0)), resamples=2000)
    assert v["verdict"] == want, v
    assert v["ci"]["locus-sft"]["low"] < v["ci"]["locus-sft"]["point"] < v["ci"]["locus-sft"]["high"]
    assert all(c["passed"] == (rise >= 0.1) for c in v["positive_control"].values())
    if want == "null": assert v["largest_advantage_excluded"]["locus-sft"] == v["ci"]["locus-sft"]["high"]
    if want == "effect": assert v["ci"]["locus-cpt"]["low"] > 0 and v["larger_not_worse_by_3_points"]

def test_verdict_refuses_a_chosen_base_without_runs(tmp_path):
    made_up(tmp_path, 0.4, True, 0.2, np.random.default_rng(0))
    (tmp_path / "eval" / "sft-s1" / "predictions.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="sft-s1/predictions.jsonl is missing: run `locus miniature --stages rl` first"): verdict(tmp_path)

def test_hierarchical_ci_sees_a_real_difference():
    rng = np.random.default_rng(1); n = 800
    acc = {(c, s): (rng.random(n) < p).astype(float) for c, p in (("locus", 0.5), ("sft", 0.4), ("cpt", 0.4)) for s in range(3)}
    ci = hierarchical_ci(acc, [0, 1, 2], resamples=2000)
    assert all(0 < v["low"] < 0.1 < v["high"] for v in ci.values())

def test_miniature_command_as_the_notebook_prints_it(tmp_path):
    "`locus miniature` on a copy of the experiment: the gate of the committed base (first items), rl skipped by the plan, then forced, and the verdict."
    root = tmp_path / "exp"; root.mkdir(); (root / "plan.json").write_text(json.dumps(PLAN)); (root / "base").symlink_to(RUN / "base")
    run = lambda *a: subprocess.run([LOCUS, "miniature", "--root", str(root), *a], capture_output=True, text=True, cwd=REPO, env=ENV)
    r = run("--stages", "gate,rl,verdict", "--limit", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[rl] skipped: no candidate base passed the gate" in r.stdout and not (root / "eval").exists()
    committed = {n: {x["seed"]: x["completion"] for x in read_jsonl(RUN / "results" / f"{n}.jsonl")} for n in SETS}
    for n in SETS:   # the gate's rows are the committed gate's, completion for completion
        rows = read_jsonl(root / "results" / f"{n}.jsonl"); assert rows and all(committed[n][x["seed"]] == x["completion"] for x in rows), n
    assert json.loads((root / "verdict.json").read_text())["verdict"] == "uninformative"
    r = run("--stages", "rl,verdict", "--force", "--seeds", "0", "--max_steps", "1", "--limit", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("base", "locus-s0", "sft-s0", "cpt-s0"):
        m = json.loads((root / "eval" / name / "metrics.json").read_text())["metrics"]; assert set(m) == set(EVAL_SETS), name
    h = read_jsonl(root / "locus-s0" / "metrics.jsonl")[0]
    assert h["rewards/format_reward/mean"] >= 0.9 and "rewards/iou_reward/mean" in h
    v = json.loads((root / "verdict.json").read_text())
    assert v["verdict"] == "uninformative" and v["positive_control"]["locus-s0"]["passed"] is False and v["primary"]["base"] >= 0

def test_miniature_refuses_bad_options():
    for args, msg in ((["--stages", "train"], "unknown stage 'train'"), (["--candidate", "C"], "--candidate 'C': expected one of B, A")):
        r = subprocess.run([LOCUS, "miniature", *args], capture_output=True, text=True, cwd=REPO, env=ENV)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr

def test_miniature_help_explains_every_option():
    r = subprocess.run([LOCUS, "miniature", "--help"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0
    for opt in ("--root", "--stages", "--candidate", "--minutes", "--vision_steps", "--conditions", "--seeds", "--config", "--force", "--limit", "--max_steps"):
        assert opt in r.stdout, opt
