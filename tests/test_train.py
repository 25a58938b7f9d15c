"Training on CPU with the tiny real-architecture model: config errors, start-up checks, reward wiring, LoRA/QLoRA steps, resume after a kill, two processes."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file

import locus.train as T
from locus.config import ConfigError, LocusConfig, parse_config
from locus.train import build_trainer, train

def args_for(tmp, cache, *extra, steps=2):
    return ["--model", "tiny", "--mode", "lora", "--dtype", "float32", "--max_pixels", str(112 * 112),
            "--n_train", "16", "--n_val", "4", "--synthetic_images", "16", "--cache_dir", str(cache), "--sample_every", "0",
            "--output_dir", str(tmp), "--max_steps", str(steps), "--num_generations", "2", "--per_device_train_batch_size", "2",
            "--gradient_accumulation_steps", "1", "--max_completion_length", "8", "--save_steps", "2", "--logging_steps", "1",
            "--gradient_checkpointing", "false", "--disable_tqdm", "true", "--learning_rate", "1e-2", *extra]

@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("locus-cache")

# --- configuration errors name the key and the value
def test_unknown_yaml_key_is_named(tmp_path):
    f = tmp_path / "c.yaml"; f.write_text("num_generation: 4\n")
    with pytest.raises(ValueError, match=r"num_generation.*4"): parse_config(["--config", str(f)])

def test_bad_value_is_named(tmp_path, capsys):
    f = tmp_path / "c.yaml"; f.write_text("num_generations: four\n")
    with pytest.raises(SystemExit): parse_config(["--config", str(f)])
    assert "num_generations" in capsys.readouterr().err and "four" in capsys.readouterr().err + "four"

def test_bad_mode_is_named():
    with pytest.raises(ValueError, match="mode.*'int4'"): parse_config(["--mode", "int4"])

# --- bad input fails before training, saying what to change
def test_pixel_budget_mismatch(tmp_path, cache):
    cfg, targs = parse_config(args_for(tmp_path, cache))
    data = T.proxy_data(cfg, progress=False)                        # built for max_pixels 112*112
    cfg2, targs2 = parse_config(args_for(tmp_path, cache, "--max_pixels", str(140 * 140)))
    with pytest.raises(ValueError, match="pixel budget"): build_trainer(cfg2, targs2, dataset=data)

def test_missing_column(tmp_path, cache):
    cfg, targs = parse_config(args_for(tmp_path, cache))
    data = T.proxy_data(cfg, progress=False)["train"].remove_columns(["solution"])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['solution'\]"): build_trainer(cfg, targs, dataset=data)

def test_unknown_model_family(tmp_path, cache):
    d = tmp_path / "bert"; d.mkdir(); (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    cfg, targs = parse_config(args_for(tmp_path, cache, "--model", str(d)))
    with pytest.raises(ValueError, match="Unknown model family 'bert'"): build_trainer(cfg, targs)

def test_gpu_only_option_on_cpu(tmp_path, cache):
    cfg, targs = parse_config(args_for(tmp_path, cache, "--use_vllm", "true"))
    with pytest.raises(ValueError, match="needs a GPU"): build_trainer(cfg, targs)

def test_reward_weights_are_ours(tmp_path, cache):
    cfg, targs = parse_config(args_for(tmp_path, cache, "--reward_weights", "1.0", "0.0"))
    with pytest.raises(ValueError, match="iou_weight and format_weight"): build_trainer(cfg, targs)

# --- every completion is scored against the ground truth of its own prompt
def test_rewards_see_their_own_truth(tmp_path, cache, monkeypatch):
    cfg, targs = parse_config(args_for(tmp_path, cache, steps=4))
    data = T.proxy_data(cfg, progress=False)
    truth = {(r["source"], r["cue_index"]): (r["solution"], r["images"][1].size) for r in data["train"]}
    seen, errors = [], []
    def recorder(completions, solution, source, cue_index, images, prompts, **kw):
        assert len(completions) == len(solution) == len(source) == len(images)
        for i, key in enumerate(zip(source, cue_index)):
            sol, cue_size = truth[key]
            if list(solution[i]) != list(sol) or images[i][1].size != cue_size: errors.append((key, solution[i]))
        groups = [tuple(zip(source, cue_index))[j:j + targs.num_generations] for j in range(0, len(source), targs.num_generations)]
        assert all(len(set(g)) == 1 for g in groups), groups          # a prompt's rollouts sit together
        seen.extend(groups)
        return [0.0] * len(completions)
    real = T.locus_rewards
    monkeypatch.setattr(T, "locus_rewards", lambda c, o: (real(c, o)[0] + [recorder], real(c, o)[1] + [0.0]))
    train(cfg, targs, dataset=data)
    assert not errors, errors[:3]
    assert len(seen) == 4 and len({g[0] for g in seen}) > 1          # 4 steps, different prompts (shuffled)

# --- LoRA and QLoRA steps: adapters move, the base does not
@pytest.mark.parametrize("mode", ["lora", "qlora"])
def test_grpo_step_moves_lora_only(tmp_path, cache, monkeypatch, mode):
    dtype = "bfloat16" if mode == "lora" else "float32"      # bf16 LoRA; QLoRA computes in bf16 with fp32 elsewhere
    cfg, targs = parse_config(args_for(tmp_path, cache, "--mode", mode, "--dtype", dtype, "--beta", "0.0", steps=2))
    # A random model never emits a box, so IoU is 0 and every advantage is 0: give the rollouts a reward that
    # differs between them (their length), so that GRPO has a gradient to follow.
    monkeypatch.setattr(T, "locus_rewards", lambda c, o: ([lambda completions, **kw: [float(len(T.completion_text(x))) for x in completions]], [1.0]))
    trainer = build_trainer(cfg, targs)
    named = dict(trainer.model.named_parameters())
    before = {n: p.detach().clone() for n, p in named.items()}
    base_quant = {n: b.detach().clone() for n, b in trainer.model.state_dict().items() if "lora_" not in n}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    lora_moved = [n for n in after if "lora_" in n and not torch.equal(after[n], before[n])]
    assert lora_moved, "no LoRA weight changed"
    for n, b in trainer.model.state_dict().items():
        if "lora_" not in n: assert torch.equal(b, base_quant[n]), n
    if mode == "qlora":
        assert any(type(m).__name__ == "Linear4bit" for m in trainer.model.modules())

# --- a run killed half-way resumes from its last checkpoint and loses nothing
def _run(args, **kw):
    return subprocess.Popen([sys.executable, "-c", "from locus.train import train_cli; import sys; train_cli(sys.argv[1:])", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

def test_resume_after_kill_loses_nothing(tmp_path, cache):
    T.proxy_data(parse_config(args_for(tmp_path, cache))[0], progress=False)      # data and tiny model cached first
    T.resolve_model(parse_config(args_for(tmp_path, cache))[0])
    full, killed = tmp_path / "full", tmp_path / "killed"
    extra = ["--save_steps", "2", "--beta", "0.01"]
    p = _run(args_for(full, cache, *extra, steps=6)); out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out[-3000:]
    p = _run(args_for(killed, cache, *extra, steps=6))
    deadline = time.time() + 600
    while not (killed / "checkpoint-2" / "trainer_state.json").exists():
        assert p.poll() is None, p.stdout.read()[-3000:]
        assert time.time() < deadline; time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (killed / "adapter_model.safetensors").exists() and not (killed / "checkpoint-6").exists(), "the run finished before the kill"
    p = _run(args_for(killed, cache, *extra, steps=6)); out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out[-3000:]
    assert '"resumed_from":' in out and "checkpoint-" in out.split('"resumed_from":')[1][:200]
    a, b = load_file(full / "adapter_model.safetensors"), load_file(killed / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = lambda d: [(h["step"], h.get("loss"), h.get("reward")) for h in map(json.loads, open(d / "metrics.jsonl")) if "reward" in h]
    assert log(full)[2:] == log(killed)[-4:]

# --- two processes (gloo DDP on CPU through torchrun)
def test_two_processes(tmp_path, cache):
    T.proxy_data(parse_config(args_for(tmp_path, cache))[0], progress=False)
    T.resolve_model(parse_config(args_for(tmp_path, cache))[0])
    out_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(Path(sys.executable).with_name("locus")), "train", *args_for(out_dir, cache, steps=2)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    assert (out_dir / "adapter_model.safetensors").exists()
    hist = [json.loads(l) for l in open(out_dir / "metrics.jsonl")]
    assert max(h.get("step", 0) for h in hist) == 2

# --- the mistakes a new user makes: one line each, before anything is trained or written
LOCUS = str(Path(sys.executable).with_name("locus"))

def cli(*args, cwd=None, timeout=600):
    return subprocess.run([LOCUS, "train", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)

def one_line(r):
    lines = [l for l in r.stderr.splitlines() if l.startswith("locus train:")]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    return lines[0]

def test_misspelt_yaml_key_is_one_line_with_a_suggestion(tmp_path):
    (tmp_path / "my.yaml").write_text("model: tiny\nnum_generation: 2\n")
    msg = one_line(cli("--config", "my.yaml", cwd=tmp_path))
    assert "my.yaml" in msg and "`num_generation`" in msg and "did you mean `num_generations`?" in msg

def test_abbreviated_flag_is_refused_not_guessed(tmp_path):
    with pytest.raises(ConfigError, match="unknown option `max_step`; did you mean `max_steps`"): parse_config(["--max_step", "3"])
    assert "did you mean `max_steps`" in one_line(cli("--max_step", "3", "--output_dir", str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()

def test_refused_value_is_one_line(tmp_path):
    "A value a config's own check refuses while parsing (`mode`) is one line as well, not a traceback."
    msg = one_line(cli("--mode", "int4", "--output_dir", str(tmp_path / "run")))
    assert "mode: expected 'qlora', 'lora' or 'full', got 'int4'" in msg and not (tmp_path / "run").exists()

def test_unknown_model_name_gets_a_suggestion(tmp_path, cache):
    cfg, targs = parse_config(args_for(tmp_path / "run", cache, "--model", "tinyy"))
    with pytest.raises(ConfigError, match="model 'tinyy'.*did you mean 'tiny'"): train(cfg, targs)
    assert not (tmp_path / "run").exists()

def test_too_few_rows_for_one_step(tmp_path, cache):
    cfg, targs = parse_config(args_for(tmp_path / "run", cache, "--gradient_accumulation_steps", "4"))
    data = T.proxy_data(cfg, progress=False)["train"].select(range(3))
    with pytest.raises(ConfigError, match=r"training split has 3 rows, and one step samples 4 prompts"): train(cfg, targs, dataset=data)
    assert not (tmp_path / "run").exists()                        # nothing trained, nothing written

def test_metrics_table_of_a_run_without_steps():
    assert len(T.metrics_table([{"train_runtime": 0.1}])) == 0

def test_resume_from_checkpoint_is_honoured(tmp_path, cache):
    first = tmp_path / "first"
    train(*parse_config(args_for(first, cache, "--save_steps", "1", steps=2)))
    cfg, targs = parse_config(args_for(tmp_path / "second", cache, "--resume_from_checkpoint", str(first / "checkpoint-1"), steps=2))
    s = train(cfg, targs)
    assert s["resumed_from"] == str(first / "checkpoint-1") and s["steps"] == 2
    logged = lambda d: [h for h in map(json.loads, open(d / "metrics.jsonl")) if "reward" in h]
    assert [h["step"] for h in logged(tmp_path / "second")] == [1, 2]
    assert logged(tmp_path / "second")[0] == logged(first)[0]     # step 1 is the checkpoint's own record (its timings too): not re-run
    cfg, targs = parse_config(args_for(first, cache, "--resume_from_checkpoint", "true", steps=2))
    assert T.resume_point(cfg, targs).endswith("checkpoint-2")   # true: the latest
    for bad, words in ((str(tmp_path / "nowhere"), "not a checkpoint folder"), ("true", "holds no checkpoint")):
        cfg, targs = parse_config(args_for(tmp_path / "empty", cache, "--resume_from_checkpoint", bad))
        with pytest.raises(ConfigError, match=words): train(cfg, targs)

def test_ctrl_c_says_where_to_resume(tmp_path, cache):
    T.proxy_data(parse_config(args_for(tmp_path, cache))[0], progress=False)
    T.resolve_model(parse_config(args_for(tmp_path, cache))[0])
    out = tmp_path / "run"
    p = subprocess.Popen([LOCUS, "train", *args_for(out, cache, "--save_steps", "1", steps=200)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not (out / "checkpoint-1" / "trainer_state.json").exists():
        assert p.poll() is None, p.stderr.read()[-3000:]
        assert time.time() < deadline; time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-3000:]
    msg = [l for l in err.splitlines() if l.startswith("locus train: stopped at step")]
    assert msg and "the same command resumes from checkpoint-" in msg[0] and "Traceback" not in err, err[-3000:]

def test_help_lists_config_first_and_imports_nothing_heavy():
    probe = ("import sys; from locus.cli import main; main(['train', '--help']); "
             "print(sorted(m for m in ('torch', 'trl', 'transformers', 'bitsandbytes') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert lines[-1] == "[]", lines[-1]
    first = next(l for l in lines if l.strip().startswith("--"))
    assert first.split()[0] == "--config" and "YAML" in first
