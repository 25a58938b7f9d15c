"""GRPO memory and speed on one GPU: plain TRL against locus's lean and fast paths, at the published Qwen2.5-VL sizes.

Models are built from their published configurations with random weights (memory and time depend on the shapes, not
the values; random weights sample to the completion limit, the worst case), saved once to --model-dir and loaded the
way users load hub models. Every variant runs in its own process, so each peak-memory figure is its own; the parent
writes one JSON list and one markdown table, with every ratio taken against plain TRL in the same run.

    python bench/grpo_bench.py                                   # CPU: the tiny model, seconds (what CI runs)
    python bench/grpo_bench.py --models 7b,3b --workloads locus,unsloth --paths plain,lean,fast,bf16 \\
        --out bench/results/gpu.json                             # the GPU run (bench/README.md)

Paths: plain = what a TRL user writes by hand (TRL 1.16 GRPOTrainer + peft LoRA r16 + bitsandbytes NF4, the group in
one forward); lean = locus train, 4-bit, micro-batches of 1, frozen vision tower once per image, embedding table in CPU
memory, paged 8-bit AdamW; fast = locus train, bf16 base, micro-batches of 2, vision once per image, compiled
static-cache decoding; bf16 = plain TRL with a bf16 base (reference).
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))          # run from a checkout without installing

# The published configurations (Qwen/Qwen2.5-VL-7B-Instruct and -3B-Instruct config.json), shapes only.
_VISION = dict(depth=32, hidden_act="silu", hidden_size=1280, intermediate_size=3420, num_heads=16, in_chans=3,
               patch_size=14, spatial_merge_size=2, spatial_patch_size=14, temporal_patch_size=2, window_size=112,
               fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2)
PUBLISHED = {
    "7b": dict(text=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
                         hidden_act="silu", rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}),
               vision=dict(_VISION, out_hidden_size=3584), tie=False),
    "3b": dict(text=dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                         num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000, rms_norm_eps=1e-6,
                         hidden_act="silu", rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}),
               vision=dict(_VISION, out_hidden_size=2048), tie=True),
}
# Workloads: (image size, crop size or None, group size G, completion tokens)
WORKLOADS = {
    "locus": dict(image=(1148, 868), crop=(112, 112), G=8, L=256),      # ~1 MP (1,271 visual tokens) + a small cue, as LOCUS trains
    "unsloth": dict(image=(512, 512), crop=None, G=4, L=1024),          # Unsloth's public Qwen2.5-VL-7B GRPO notebook
    "tiny": dict(image=(224, 168), crop=(56, 56), G=4, L=16),           # CPU smoke run
}
PATHS = ("plain", "lean", "fast", "bf16")
MIN_PIXELS, MAX_PIXELS = 56 * 56, 1280 * 28 * 28


# ----------------------------------------------------------------------------------------------- models
def build_model(name: str, path: Path) -> Path:
    "Build the random-weight model `name` ('7b', '3b' or 'tiny') with the offline tokenizer; save it to `path` once."
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from locus.testing import tiny_processor, tiny_qwen25_vl, save_pretrained_vlm
    if (path / "config.json").exists(): return path
    t0 = time.time()
    if name == "tiny":
        model, proc = tiny_qwen25_vl(seed=0, hidden_size=64, text_layers=2, vision_depth=2, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    else:
        spec = PUBLISHED[name]
        proc = tiny_processor(MIN_PIXELS, MAX_PIXELS)
        tok = proc.tokenizer; tid = tok.convert_tokens_to_ids
        text = dict(spec["text"], bos_token_id=tid("<|endoftext|>"), eos_token_id=tid("<|im_end|>"), pad_token_id=tid("<|endoftext|>"))
        cfg = Qwen2_5_VLConfig(text_config=text, vision_config=spec["vision"], image_token_id=tid("<|image_pad|>"),
                               video_token_id=tid("<|video_pad|>"), vision_start_token_id=tid("<|vision_start|>"),
                               vision_end_token_id=tid("<|vision_end|>"), tie_word_embeddings=spec["tie"])
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        with torch.device(dev):
            model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
        gc = model.generation_config
        gc.bos_token_id, gc.pad_token_id = tid("<|endoftext|>"), tok.pad_token_id
        gc.eos_token_id = [tid("<|im_end|>"), tid("<|endoftext|>")]
    save_pretrained_vlm(model, proc, path)
    print(f"built {name} in {time.time() - t0:.1f}s -> {path}", flush=True)
    return path


# ----------------------------------------------------------------------------------------------- data
def workload_dataset(name: str, n: int = 64):
    "A data set of `n` rows of the workload (locus: the proxy prompt with a scene and a crop; unsloth: one image, a question)."
    from datasets import Dataset
    from locus.data import proxy_prompt
    from locus.scenes import make_scene
    w = WORKLOADS[name]; rows = []
    for i in range(n):
        scene = make_scene(i, canvas=w["image"], n_objects=8)
        box = [float(v) for v in scene.objects[0].box]
        if w["crop"]:
            x, y = int(box[0]), int(box[1]); cw, ch = w["crop"]
            imgs = [scene.image, scene.image.crop((x, y, x + cw, y + ch))]
            text = proxy_prompt("resized")
        else:
            imgs = [scene.image]
            text = "Describe the objects in this image, then output the bounding box of the largest one inside <answer> </answer>."
        content = [{"type": "image", "text": None} for _ in imgs] + [{"type": "text", "text": text}]
        rows.append(dict(prompt=[{"role": "user", "content": content}], images=imgs, solution=box,
                         min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, factor=28))
    return Dataset.from_list(rows)


# ----------------------------------------------------------------------------------------------- one variant (child process)
def grpo_args(out: str, w: dict, steps: int, micro: int, cuda: bool, **kw):
    from trl import GRPOConfig
    return GRPOConfig(output_dir=out, num_generations=w["G"], max_completion_length=w["L"], per_device_train_batch_size=micro,
                      gradient_accumulation_steps=w["G"] // micro, beta=0.01, learning_rate=1e-5, temperature=1.0, max_steps=steps,
                      logging_steps=1, save_strategy="no", report_to="none", seed=0, bf16=cuda, use_cpu=not cuda,
                      gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}, dataloader_num_workers=0, **kw)

def plain_trainer(model_dir: Path, w: dict, steps: int, out: str, cuda: bool, quantize: bool):
    "Plain TRL, written as a TRL user writes it: NF4 (or bf16) base, peft LoRA, the group in one forward."
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForImageTextToText, BitsAndBytesConfig
    from trl import GRPOTrainer
    from locus.reward import iou_reward, format_reward
    from locus.testing import load_processor
    dtype = torch.bfloat16 if cuda else torch.float32
    kw = dict(dtype=dtype, use_safetensors=True)
    if quantize:
        kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                                       bnb_4bit_compute_dtype=dtype, llm_int8_skip_modules=["model.visual", "lm_head"])
    if cuda: kw["device_map"] = {"": 0}
    model = AutoModelForImageTextToText.from_pretrained(model_dir, **kw)
    if quantize:
        from locus.model import disable_cpu_repack
        disable_cpu_repack(model)               # bitsandbytes' avx512-bf16 CPU repack breaks generate -> train (CPU only; a no-op on a GPU)
    proc = load_processor(model_dir, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=r"^model\.language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$")
    args = grpo_args(out, w, steps, w["G"], cuda, reward_weights=[0.9, 0.1])
    return GRPOTrainer(model=model, reward_funcs=[iou_reward, format_reward], args=args, train_dataset=workload_dataset(w["name"]),
                       processing_class=proc, peft_config=lora)

def locus_trainer(model_dir: Path, w: dict, steps: int, out: str, cuda: bool, path: str, tied: bool):
    "`locus train`'s trainer (`build_trainer`) with the lean or the fast settings."
    from locus.train import LocusConfig, build_trainer
    dtype = "bfloat16" if cuda else "float32"
    if path == "lean":
        cfg = LocusConfig(model=str(model_dir), mode="qlora", dtype=dtype, share_vision=True, offload_embeddings=not tied,
                          min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, sample_every=0)
        args = grpo_args(out, w, steps, 1, cuda, optim="paged_adamw_8bit" if cuda else "adamw_torch")
    else:
        cfg = LocusConfig(model=str(model_dir), mode="lora", dtype=dtype, share_vision=True, compile_generation=True,
                          min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, sample_every=0)
        args = grpo_args(out, w, steps, min(2, w["G"]), cuda)
    return build_trainer(cfg, args, dataset=workload_dataset(w["name"]))

def weight_bytes(model) -> int:
    "Bytes of weights one decoding step reads: the language model, its LoRA and the output layer (not the vision tower, not the embedding table)."
    n = 0
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        if ".visual." in name or "embed_tokens" in name or p.device.type == "meta": continue
        n += p.numel() * p.element_size()
        qs = getattr(p, "quant_state", None)
        if qs is not None and getattr(qs, "absmax", None) is not None: n += qs.absmax.numel() * qs.absmax.element_size()
    return n

def bandwidth() -> float:
    "Measured device memory bandwidth in bytes/s (a 1 GiB copy reads and writes it)."
    import torch
    a = torch.empty(2**29, dtype=torch.int16, device="cuda"); b = torch.empty_like(a)
    for _ in range(3): b.copy_(a)
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(10): b.copy_(a)
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 10
    del a, b; torch.cuda.empty_cache()
    return 2 * 2**30 / dt

def same_maths(trainer, batch) -> dict:
    "On one step's batch, with the final weights: log-probs with locus's levers on against off (vision sharing; micro-batch of 1 against the whole group)."
    import torch
    from locus.efficient import SharedVision
    model = trainer.model; dev = next(p for p in model.parameters() if p.device.type != "meta").device
    b = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in batch.items()}
    ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1); mask = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
    kw = {k: b[k] for k in ("pixel_values", "image_grid_thw", "num_images") if k in b}
    shared = getattr(trainer, "locus_efficient", {}).get("share_vision")
    was = model.training; model.eval()
    try:
        with torch.no_grad():
            on, _, _ = trainer._get_per_token_logps_and_entropies(model, ids, mask, b["completion_ids"].size(1), batch_size=1, **kw)
            if shared is not None: shared.remove()
            off, _, _ = trainer._get_per_token_logps_and_entropies(model, ids, mask, b["completion_ids"].size(1), batch_size=ids.size(0), **kw)
            if shared is not None: trainer.locus_efficient["share_vision"] = SharedVision(shared.visual, shared.capacity)
    finally:
        model.train(was)
    m = b["completion_mask"].bool()
    d = (on - off).abs()[m]
    return dict(max_abs_logp_diff=float(d.max()), mean_abs_logp_diff=float(d.mean()), mean_logp=float(off[m].mean()), tokens=int(m.sum()))

def _merge(slices: list[dict]) -> dict:
    "TRL's buffered micro-batches of one generation batch, joined back into the whole group (on the CPU)."
    import torch
    out = {}
    for k, v in slices[0].items():
        if torch.is_tensor(v) and v.dim() > 0: out[k] = torch.cat([s[k].detach().cpu() for s in slices])
        elif isinstance(v, list): out[k] = [x for s in slices for x in s[k]]
        else: out[k] = v.detach().cpu() if torch.is_tensor(v) else v
    return out

def run_variant(spec: dict) -> dict:
    import torch, transformers, peft, trl
    from transformers import TrainerCallback
    from locus.efficient import LocusGenerate
    cuda = torch.cuda.is_available()
    model_dir, w = Path(spec["model_dir"]), dict(WORKLOADS[spec["workload"]], name=spec["workload"])
    captured = {}

    class Capture(TrainerCallback):
        "Keep the first step's batch (on the CPU) for the same-maths check at the end."
        def __init__(self, trainer): self.trainer = trainer
        def on_step_end(self, args, state, control, **kw):
            if "batch" not in captured and getattr(self.trainer, "_buffered_inputs", None):
                captured["batch"] = _merge(self.trainer._buffered_inputs)

    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        if spec["path"] in ("plain", "bf16"):
            trainer = plain_trainer(model_dir, w, spec["steps"], out, cuda, quantize=spec["path"] == "plain")
            LocusGenerate(trainer.model, trainer)          # the timer only: sampling is TRL's own
        else:
            trainer = locus_trainer(model_dir, w, spec["steps"], out, cuda, spec["path"], tied=PUBLISHED.get(spec["model"], {}).get("tie", False))
        trainer.add_callback(Capture(trainer))
        load_s = time.time() - t0
        if cuda: torch.cuda.reset_peak_memory_stats()
        trainer.train()
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        peak_res = torch.cuda.max_memory_reserved() / 2**30 if cuda else None
        hist = [h for h in trainer.state.log_history if "step_time" in h]
        check = same_maths(trainer, captured["batch"]) if spec.get("check") and "batch" in captured and spec["path"] in ("lean", "fast") else None
        floor_bytes = weight_bytes(trainer.model)
    later = hist[1:] or hist
    med = lambda k: statistics.median([h[k] for h in later if k in h]) if any(k in h for h in later) else None
    step_s, gen_s = med("step_time"), med("gen/seconds")
    b = captured.get("batch")
    tokens = int(b["prompt_mask"].sum() + b["completion_mask"].sum()) if b else None
    row = dict(model=spec["model"], path=spec["path"], workload=spec["workload"], G=w["G"], completion_tokens=w["L"],
               steps=len(hist), step_times=[round(h["step_time"], 3) for h in hist], step_s=step_s,
               peak_alloc_gib=peak, peak_reserved_gib=peak_res, gen_s=gen_s, gen_share=(gen_s / step_s) if gen_s and step_s else None,
               decode_ms=med("gen/decode_ms"), prefill_s=med("gen/prefill_s"), new_tokens=med("gen/new_tokens"),
               completion_mean_length=med("completions/mean_length"), tokens_per_step=tokens,
               train_tokens_per_s=tokens / step_s if tokens and step_s else None, weight_bytes_per_decode=floor_bytes, load_s=round(load_s, 1),
               same_maths=check, torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__, trl=trl.__version__)
    if cuda:
        import bitsandbytes
        bw = spec.get("bandwidth") or bandwidth()
        row.update(gpu=torch.cuda.get_device_name(), driver=_driver(), cuda=torch.version.cuda, bitsandbytes=bitsandbytes.__version__,
                   bandwidth_gbs=round(bw / 1e9, 1), floor_ms=1e3 * floor_bytes / bw)
        row["decode_over_floor"] = row["decode_ms"] / row["floor_ms"] if row["decode_ms"] else None
    else:
        row.update(gpu=f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)", driver=None, floor_ms=None, decode_over_floor=None)
    return row

def _driver():
    try: return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception: return None


# ----------------------------------------------------------------------------------------------- the parent: all variants, one table
def table(rows: list[dict]) -> str:
    "The markdown table: one row per variant, ratios against plain TRL on the same model and workload."
    base = {(r["model"], r["workload"]): r for r in rows if r["path"] == "plain" and not r.get("error")}
    f = lambda v, d=1: "" if v is None else f"{v:.{d}f}"
    out = ["| model | workload | path | peak alloc GiB | vs plain | step s | speed-up vs plain | generating | decode ms | floor ms | decode / floor | same maths (max abs log-prob diff) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            out.append(f"| {r['model']} | {r['workload']} | {r['path']} | failed: {r['error'][:120]} |||||||||"); continue
        b = base.get((r["model"], r["workload"]))
        mem = f"{r['peak_alloc_gib'] / b['peak_alloc_gib']:.2f}x" if b and r["peak_alloc_gib"] and b["peak_alloc_gib"] else ""
        spd = f"{b['step_s'] / r['step_s']:.2f}x" if b and r["step_s"] else ""
        sm = r.get("same_maths") or {}
        gen = "" if r["gen_share"] is None else f"{100 * r['gen_share']:.0f}%"
        same = f"{sm['max_abs_logp_diff']:.2g}" if sm else ""
        out.append(f"| {r['model']} | {r['workload']} | {r['path']} | {f(r['peak_alloc_gib'], 2)} | {mem} | {f(r['step_s'])} | {spd} | "
                   f"{gen} | {f(r['decode_ms'])} | {f(r['floor_ms'], 2)} | {f(r['decode_over_floor'], 0)} | {same} |")
    return "\n".join(out)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--models", default="tiny", help="comma list of '7b', '3b', 'tiny' (default tiny: CPU smoke run)")
    p.add_argument("--workloads", default=None, help="comma list of 'locus', 'unsloth' ('tiny' for the tiny model; default: locus, or tiny)")
    p.add_argument("--paths", default="plain,lean,fast", help=f"comma list of {', '.join(PATHS)}")
    p.add_argument("--variants", default=None, help="explicit comma list of model:workload:path[:steps] (overrides the three above)")
    p.add_argument("--steps", type=int, default=3, help="GRPO steps per variant (the first is a warm-up: step_s is the median of the rest)")
    p.add_argument("--check", default="7b,tiny", help="models whose lean/fast variants get the same-maths check (comma list)")
    p.add_argument("--model-dir", default=os.path.join(tempfile.gettempdir(), "locus-bench-models"), help="where the built models are saved and reused")
    p.add_argument("--out", default=None, help="JSON file for the rows (a .md table is written beside it); default: print only")
    p.add_argument("--timeout", type=int, default=900, help="seconds one variant may take before it is recorded as failed")
    p.add_argument("--rows-dir", default=None, help="keep each finished row here as a file; a re-run skips variants already there (resume)")
    p.add_argument("--merge", nargs="+", default=None, help="only merge these row files / JSON lists into --out (and its table)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        spec = json.loads(a.child)
        try: row = run_variant(spec)
        except Exception as e:
            import traceback; traceback.print_exc()
            row = dict(model=spec["model"], path=spec["path"], workload=spec["workload"], error=f"{type(e).__name__}: {e}")
        Path(spec["row_file"]).write_text(json.dumps(row))
        return 0
    if a.merge:
        rows = []
        for f in a.merge:
            d = json.loads(Path(f).read_text()); rows += d if isinstance(d, list) else [d]
        return _write(rows, a.out)
    if a.variants:
        variants = [tuple(v.split(":")) for v in a.variants.split(",")]
    else:
        models = a.models.split(",")
        wls = (a.workloads or ("tiny" if models == ["tiny"] else "locus")).split(",")
        variants = [(m, wl, pa) for m in models for wl in wls for pa in a.paths.split(",")]
    for v in variants:
        if v[0] not in (*PUBLISHED, "tiny") or v[1] not in WORKLOADS or v[2] not in PATHS: raise SystemExit(f"unknown variant {':'.join(v)}")
    root = Path(a.model_dir)
    rows, old, built = [], [], set()
    if a.out and Path(a.out).exists(): old = json.loads(Path(a.out).read_text())     # re-runs replace their own rows only
    for v in variants:
        m, wl, pa = v[:3]; steps = int(v[3]) if len(v) > 3 else a.steps
        done = Path(a.rows_dir) / f"{m}-{wl}-{pa}.json" if a.rows_dir else None
        if done and done.exists() and not json.loads(done.read_text()).get("error"):
            rows.append(json.loads(done.read_text())); continue
        if m not in built:                # in a process of its own: the parent never holds GPU memory
            rc = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); import grpo_bench as b; "
                                 f"from pathlib import Path; b.build_model({m!r}, Path({str(root / m)!r}))"], timeout=a.timeout).returncode
            if rc: rows.append(dict(model=m, workload=wl, path=pa, error="model build failed")); continue
            built.add(m)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf: row_file = tf.name
        spec = dict(model=m, workload=wl, path=pa, steps=steps, model_dir=str(root / m), row_file=row_file, check=m in a.check.split(","))
        t0 = time.time(); print(f"== {m} {wl} {pa}: {steps} steps", flush=True)
        try:
            subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], timeout=a.timeout)
            row = json.loads(Path(row_file).read_text())
        except subprocess.TimeoutExpired: row = dict(model=m, workload=wl, path=pa, error=f"timed out after {a.timeout}s")
        except (OSError, json.JSONDecodeError) as e: row = dict(model=m, workload=wl, path=pa, error=f"no result ({e})")
        row["wall_s"] = round(time.time() - t0, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
        if done: done.parent.mkdir(parents=True, exist_ok=True); done.write_text(json.dumps(row))
    keys = {(r["model"], r["workload"], r["path"]) for r in rows}
    return _write([r for r in old if (r["model"], r["workload"], r["path"]) not in keys] + rows, a.out)

def _write(rows: list[dict], out: str | None) -> int:
    "Sort, print and write the rows (JSON) and their table (markdown beside it)."
    last = {}
    for r in rows: last[(r["model"], r["workload"], r["path"])] = r      # a later row of the same variant wins
    rows = list(last.values())
    order = {p: i for i, p in enumerate(PATHS)}
    rows.sort(key=lambda r: (r["model"], r["workload"], order[r["path"]]))
    md = table(rows)
    print(md)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(rows, indent=1) + "\n")
        Path(out).with_suffix(".md").write_text(md + "\n")
    return 0 if not any(r.get("error") for r in rows) else 1

if __name__ == "__main__":
    sys.exit(main())
