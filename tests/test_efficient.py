"""Same maths: locus's lean path (micro-batches of 1, shared vision features, CPU embedding table) computes the plain
TRL path's per-token log-probabilities, loss and gradients on fixed completions; and the benchmark runs end to end."""
import json, sys
from pathlib import Path
import pytest, torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import grpo_bench as gb


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return gb.build_model("tiny", tmp_path_factory.mktemp("models") / "tiny")


def _one_step(trainer) -> dict:
    "Train one step the way a run does; return that step's whole group (TRL's micro-batches joined)."
    from transformers import TrainerCallback
    box = {}
    class Capture(TrainerCallback):
        def on_step_end(self, args, state, control, **kw): box["batch"] = gb._merge(trainer._buffered_inputs)
    trainer.add_callback(Capture()); trainer.train()
    return box["batch"]


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def test_lean_path_same_logps_loss_and_grads(tiny_dir, tmp_path):
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from trl.trainer.utils import split_pixel_values_by_grid, split_tensor_dict, unsplit_pixel_values_by_grid
    w = dict(gb.WORKLOADS["tiny"], name="tiny")
    plain = gb.plain_trainer(tiny_dir, w, 1, str(tmp_path / "plain"), cuda=False, quantize=True)
    lean = gb.locus_trainer(tiny_dir, w, 1, str(tmp_path / "lean"), cuda=False, path="lean", tied=False)
    assert lean.args.per_device_train_batch_size == 1 and lean.args.gradient_accumulation_steps == w["G"]
    assert {"share_vision", "offloaded_bytes", "generate"} <= set(lean.locus_efficient)
    inputs = _one_step(plain); _one_step(lean)            # both as a run leaves them; the plain step's completions are the fixed ones
    g = torch.Generator().manual_seed(0)
    for n, p in plain.model.named_parameters():          # a non-zero adapter, so that log-probs depend on it
        if "lora_B" in n: p.data = (torch.randn(p.shape, generator=g) * 0.05).to(p.dtype)
    set_peft_model_state_dict(lean.model, get_peft_model_state_dict(plain.model))
    for t in (plain, lean): t.model.zero_grad(set_to_none=True)
    inputs["advantages"] = torch.tensor([1.0, -0.5, 0.25, -0.75])
    for t in (plain, lean): t.model.eval()               # dropout off: the same function on both sides

    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    kw = dict(pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"], num_images=inputs["num_images"])
    n = inputs["completion_ids"].size(1)
    with torch.no_grad():
        lp_plain, _, _ = plain._get_per_token_logps_and_entropies(plain.model, ids, mask, n, **kw)
        lp_lean, _, _ = lean._get_per_token_logps_and_entropies(lean.model, ids, mask, n, batch_size=1, **kw)
    m = inputs["completion_mask"].bool()
    assert lp_plain[m].std() > 0.1                         # a real function of the tokens, not a constant
    torch.testing.assert_close(lp_lean, lp_plain, rtol=0, atol=1e-5)

    loss_plain = plain.compute_loss(plain.model, inputs)   # the group in one forward
    loss_plain.backward()
    slices = [unsplit_pixel_values_by_grid(s) for s in split_tensor_dict(split_pixel_values_by_grid(dict(inputs)), w["G"])]
    loss_lean = 0.0
    for s in slices:                                       # micro-batches of one sequence, summed as the Trainer accumulates
        l = lean.compute_loss(lean.model, s); l.backward(); loss_lean += l.detach()
    assert abs(float(loss_plain)) > 1e-4
    torch.testing.assert_close(loss_lean, loss_plain.detach(), rtol=1e-5, atol=1e-7)
    ga, gl = _grads(plain.model), _grads(lean.model)
    assert ga.keys() == gl.keys() and len(ga) > 0
    # The adapter is bf16 here (peft's choice over a 4-bit base), so its gradients carry bf16 rounding that depends on
    # the order of the sums (one group or four slices): compare each gradient as a vector, to bf16 precision (machine epsilon 2^-7).
    rel = max(float((gl[k].float() - ga[k].float()).norm() / ga[k].float().norm().clamp_min(1e-12)) for k in ga)
    print(f"largest relative gradient difference: {rel:.2e}")
    assert rel < 2**-7, rel
    assert lean.locus_efficient["share_vision"].hits > 0   # the features were reused, not recomputed


def test_benchmark_runs_on_cpu(tmp_path):
    out = tmp_path / "cpu.json"
    rc = gb.main(["--paths", "plain,lean,fast", "--steps", "2", "--model-dir", str(tmp_path / "models"), "--out", str(out)])
    rows = json.loads(out.read_text())
    assert rc == 0, [r.get("error") for r in rows]
    assert [r["path"] for r in rows] == ["plain", "lean", "fast"]
    for r in rows:
        for k in ("model", "path", "workload", "peak_alloc_gib", "step_s", "decode_ms", "floor_ms", "gpu"): assert k in r
        assert r["step_s"] > 0 and r["decode_ms"] > 0 and r["new_tokens"] == gb.WORKLOADS["tiny"]["L"]
    for r in rows[1:]: assert r["same_maths"]["max_abs_logp_diff"] < 1e-5
    assert "| tiny | tiny | lean |" in out.with_suffix(".md").read_text()


def test_committed_gpu_results_schema():
    rows = json.loads((Path(__file__).resolve().parents[1] / "bench/results/gpu.json").read_text())
    assert {"plain", "lean", "fast"} <= {r["path"] for r in rows if r["model"] == "7b"}
    for r in rows:
        for k in ("model", "path", "workload", "peak_alloc_gib", "step_s", "decode_ms", "floor_ms", "gpu"): assert r[k] is not None, (r["path"], k)
        assert r["gpu"].startswith("NVIDIA")


def test_05a_intro_figures_are_the_committed_measurements():
    """The figures 05a's introduction quotes for plain TRL on the 7B are bench/results/gpu.json's, as rounded there."""
    root = Path(__file__).resolve().parents[1]
    r = next(r for r in json.loads((root / "bench/results/gpu.json").read_text()) if (r["model"], r["path"]) == ("7b", "plain"))
    intro = json.loads((root / "nbs/05a_efficient.ipynb").read_text())["cells"][2]["source"]
    text = " ".join("".join(intro).split())
    for figure in (f"{r['step_s']:.1f} s", f"{r['peak_alloc_gib']:.2f} GiB", f"{100 * r['gen_share']:.0f}% of the time",
                   f"{r['decode_ms']:.1f} ms a token", f"{r['floor_ms']:.1f} ms"):
        assert figure in text, figure
