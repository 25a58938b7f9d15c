"""runs/reproduce.sh, the reproduction recipe: the smoke run end to end on the CPU (killed after training and run again,
so that it also shows the resume), the checks that stop a run before it starts, and a fast `--help`."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from locus.reproduce import CONFIGS, DEFAULT_BENCHMARKS, ROWS, reproduce_cli

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "runs" / "reproduce.sh"
ENV = os.environ | {"PYTHON": sys.executable, "LOCUS": str(Path(sys.executable).parent / "locus"), "HF_HUB_OFFLINE": "1",
                    "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LOCUS_PROGRESS_EVERY": "30",
                    "PYTHONPATH": str(ROOT)}   # every command runs this checkout's package
BENCHES = DEFAULT_BENCHMARKS.split(",")

def reproduce(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT)

@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    "The smoke run, killed (the whole process group) once the train stage's marker appears, then run again to the end."
    out = tmp_path_factory.mktemp("reproduce") / "run"
    t0 = time.time()
    first = subprocess.Popen(["bash", str(SCRIPT), "--smoke", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=ENV, cwd=ROOT, start_new_session=True)
    while not (out / "stages" / "train.done").exists() and first.poll() is None and time.time() - t0 < 300: time.sleep(0.2)
    assert first.poll() is None, f"the first run ended before the kill:\n{first.stdout.read()}"
    os.killpg(first.pid, signal.SIGKILL)
    killed = first.stdout.read(); first.wait()
    second = reproduce("--smoke", "--out", out)
    return dict(out=out, killed=killed, second=second, seconds=time.time() - t0)

def test_smoke_end_to_end(smoke):
    out, run = smoke["out"], smoke["second"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = (out / "report.md").read_text()
    for p in ("lmms", "locus"):                                         # both protocols, every benchmark row, the paper beside it
        section = report.split(f"## Protocol `{p}`")[1].split("## ")[0]
        for label, *_ in ROWS: assert f"| {label} |" in section, (p, label)
        assert "| V*Bench | 0.0 | 0.0 | +0.0 | 0.0 | 79.6 | 87.4 | +7.8 |" in section
        for b in BENCHES: assert f"| {b} | 1 |" in section or f"| {b} | 2 |" in section, (p, b)      # the flips table
        assert (out / f"compare-{p}.md").read_text().startswith("| benchmark | metric | base | locus | dualfocus |")
    plan = json.loads((out / "plan.json").read_text())
    test_stages = plan["stages"]
    assert len(test_stages) == 12
    for s in test_stages:                                               # a log and a marker for every stage
        assert (out / "logs" / f"{s}.log").exists() and (out / "stages" / f"{s}.done").exists(), s
        assert f"| {s} | " in report
    assert json.loads((out / "stages" / "train.done").read_text())["seconds"] > 0
    for m in ("base", "locus", "dualfocus"):                            # each (model, mode, protocol) in its own folder
        settings = json.loads((out / "eval" / "lmms" / m / "settings.json").read_text())
        assert {s["mode"] for s in settings.values()} == {"dualfocus" if m == "dualfocus" else "direct"}
    assert "Smoke run" in report and "report card" in run.stdout

def test_resume_after_kill_skips_finished_stages(smoke):
    out, killed, again = smoke["out"], smoke["killed"], smoke["second"].stderr
    assert "[2/12] train: done" in killed and "[12/12] report" not in killed
    for s in ("data", "train"):                                         # finished before the kill: skipped, and their logs say so
        assert f"] {s}: skipped, complete since" in again, again
        assert "skipped: complete since" in (out / "logs" / f"{s}.log").read_text().splitlines()[-1]
    assert "[3/12] merge: done" in again and "[12/12] report: done" in again
    assert (out / "logs" / "train.log").read_text().count(" start: ") == 1          # trained once
    print(f"smoke run with a kill and a rerun: {smoke['seconds']:.0f} s")

def checks(tmp_path, *args):
    "The checks alone (nothing is built: every case has a problem), as the script prints them."
    run = reproduce("--out", tmp_path / "run", *args, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert not (tmp_path / "run" / "stages").exists()                   # nothing ran
    return run.stderr

def test_missing_coco_says_what_to_fetch_and_where(tmp_path):
    err = checks(tmp_path, "--gpu_memory_gb", 24, "--coco", tmp_path / "coco", "--data", tmp_path / "bench")
    line = next(l for l in err.splitlines() if "COCO train2014: no " in l)
    assert str(tmp_path / "coco" / "train2014") in line and "instances_train2014.json" in line and "--coco DIR" in line
    for url in ("http://images.cocodataset.org/zips/train2014.zip", "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"):
        assert f"curl -L -o {tmp_path / 'coco'}/{url.rsplit('/', 1)[1]} {url}" in err
    fetch = (tmp_path / "run" / "fetch.sh").read_text()
    assert "train2014.zip" in fetch and "hf download lmms-lab-encoder/POPE --repo-type dataset" in fetch

def test_missing_benchmark_data_is_named_per_benchmark(tmp_path):
    from locus.evaluate import write_fixture
    write_fixture("vstar", tmp_path / "bench" / "vstar", n=1, max_side=64)
    err = checks(tmp_path, "--gpu_memory_gb", 24, "--data", tmp_path / "bench")
    missing = [l for l in err.splitlines() if l.startswith("  - benchmark ")]
    assert len(missing) == len(BENCHES) - 2, missing                    # all but vstar (its folder) and proxy_val (built here)
    assert f"  - benchmark pope: no data: no {tmp_path / 'bench' / 'pope'}, and lmms-lab-encoder/POPE is not in the hub cache" in err
    assert not any("benchmark vstar" in l for l in missing)

def test_gpu_too_small_is_refused_with_the_config_that_fits(tmp_path):
    err = checks(tmp_path, "--gpu_memory_gb", 8, "--config", "configs/qwen2.5-vl-7b-fast.yaml")
    line = next(l for l in err.splitlines() if l.startswith("  - GPU too small"))
    assert "configs/qwen2.5-vl-7b-fast.yaml: it needs 23.3 GiB" in line and "this GPU has 8.0 GiB" in line
    assert line.endswith("configs/qwen2.5-vl-3b-lean.yaml fits (6.4 GiB): --config configs/qwen2.5-vl-3b-lean.yaml")
    err = checks(tmp_path, "--gpu_memory_gb", 4)
    assert "GPU too small: no shipped config fits 4.0 GiB; the smallest, configs/qwen2.5-vl-3b-lean.yaml, needs 6.4 GiB" in err
    err = checks(tmp_path, "--gpu_memory_gb", 24, "--coco", tmp_path / "coco")       # chosen from the measured peaks
    assert "config      configs/qwen2.5-vl-7b-fast.yaml: needs 23.3 GiB of 24.0" in err

def test_help_is_fast_and_lists_every_option():
    import inspect
    for cmd in (["bash", str(SCRIPT), "--help"], [str(Path(sys.executable).parent / "locus"), "reproduce", "--help"]):
        t0 = time.time(); run = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=60)
        assert run.returncode == 0 and time.time() - t0 < 5, (cmd, run.stderr)
        for name in inspect.signature(reproduce_cli).parameters: assert f"--{name}" in run.stdout, (cmd, name)
    probe = "import sys, locus.reproduce, locus.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], env=ENV).returncode == 0     # nothing heavy imported

def test_every_measured_config_is_shipped():
    assert all((ROOT / c).is_file() for c in CONFIGS)

def test_locus_reproduce_runs_the_script_with_the_options_given(monkeypatch):
    import locus.reproduce as R
    seen = {}
    monkeypatch.setattr(R.subprocess, "call", lambda argv, env: seen.update(argv=argv, env=env) or 0)
    from locus.cli import parse_command
    name, f, kw = parse_command(["reproduce", "--smoke", "--scale", "0.5", "--out", "runs/x"])
    assert (name, f(**kw)) == ("reproduce", 0)
    assert seen["argv"] == ["bash", str(SCRIPT), "--smoke", "--scale", "0.5", "--out", "runs/x"]   # only what differs from the defaults
    assert seen["env"]["PYTHON"] == sys.executable


def test_readme_time_and_memory_are_the_estimate_from_measurements():
    """README's 24 GB figures are what `locus.preflight` computes from bench/results/gpu.json for the config it picks."""
    import yaml
    from locus.preflight import choose_config, estimate, measured_peaks, repo_root
    peaks = measured_peaks()
    config = choose_config(24.0, peaks)
    e = estimate(yaml.safe_load((repo_root() / config).read_text()), peaks[config], 99_500, 500)
    readme = " ".join((ROOT / "README.md").read_text().split())
    section = readme.split("## Reproduce LOCUS on one GPU")[1].split("## ")[0]
    for figure in (f"On a 24 GB card it picks `{config}`", f"{e['peak_gib']:.1f} GiB reserved", f"({e['alloc_gib']:.1f} GiB allocated)",
                   f"{e['train_s'] / 3600:.1f} h of training", f"({e['steps']} steps x {e['prompts_per_step']} prompts x {e['G']} rollouts)",
                   f"measured on one {e['measured_on']}", f"Decoding is {100 * e['gen_share']:.0f}%",
                   f"at most {e['data_s'] / 3600:.1f} h on one process"):
        assert figure in section, figure
