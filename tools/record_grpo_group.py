"""Record real GRPO rollouts of the committed micro Qwen2.5-VL as a test fixture (read by nbs/04b_grpo.ipynb).

Usage: python tools/record_grpo_group.py        (about 20 s on 2 CPU cores; rewrites the two files below, bit for bit)

What it does, with the trainer `locus train` builds for configs/miniature.yaml (TRL 1.16's GRPOTrainer on
runs/miniature/pretrained, LoRA, 112 x 112 scenes, G = 8, temperature 1.0, top_p 1.0, max_completion_length 32):
1. Builds the miniature's proxy-task data (the rows its LOCUS runs train on) and takes the first N_PROMPTS rows of the
   training split (two images each: the scene and a crop of it; the crop's box in the scene is the `solution`).
2. For each prompt, samples G = 8 completions with TRL's own generation path (torch seed = SEED + row) and scores them
   with TRL's own `_generate_and_score_completions`, which calls locus.reward's iou_reward and format_reward. With
   num_iterations = 2, TRL also computes the sampling policy's per-token log-probs (`old_per_token_logps`); with
   beta = 0.01 the reference's (`ref_per_token_logps`: the base model, adapters disabled). The trainer's adapter is
   freshly initialised (LoRA B = 0), so the sampling policy is the base model: the two are the same numbers, as at
   step 0 of a LOCUS run.
3. The fixture's batch: the first two prompts whose group has a reward spread and the first whose group has none
   (in row order), 3 x 8 = 24 rollouts, padded together as TRL pads a batch (prompts left, completions right). For it,
   also the per-token log-probs of the same completions under a policy that has moved: the base model with the LoRA
   adapter the committed LOCUS run (seed 0, runs/miniature/locus-s0) ended with after 48 GRPO steps.

tests/fixtures/grpo_group.safetensors (the batch): prompt_ids, prompt_mask, completion_ids, completion_mask, old_logps,
ref_logps, policy_logps (0 at padding, as TRL returns them), rewards_iou, rewards_format (one per rollout), solution (one
box per prompt), and per prompt k its scene `scene_k` and crop `crop_k` (uint8, H x W x 3).
tests/fixtures/grpo_group.json: the settings, the prompt, `batch_rows`, and for all N_PROMPTS groups the completion
texts, their IoU and format rewards and the prompt's true box (for the share of groups without reward spread).
"""
import json, os, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np
import torch
from safetensors.torch import load_file, save_file

N_PROMPTS, G, SEED = 32, 8, 0
ADAPTER = ROOT / "runs" / "miniature" / "locus-s0"
OUT = ROOT / "tests" / "fixtures" / "grpo_group"

def trainer_args(tmp: Path, batch: int = 3 * G) -> list[str]:
    "`locus train` options: configs/miniature.yaml, one step of `batch` rollouts, TRL's own old log-probs (num_iterations 2), no dropout."
    return ["--config", str(ROOT / "configs" / "miniature.yaml"), "--model", str(ROOT / "runs" / "miniature" / "pretrained"),
            "--cache_dir", str(tmp / "cache"), "--output_dir", str(tmp / "out"),
            "--sample_every", "0", "--per_device_train_batch_size", str(batch), "--num_iterations", "2",
            "--disable_dropout", "true", "--disable_tqdm", "true", "--report_to", "none", "--seed", str(SEED)]

def main():
    from datasets.utils.logging import disable_progress_bar
    from peft import set_peft_model_state_dict
    from transformers.utils import logging as hf_logging
    from trl.trainer.utils import pad
    from locus.reward import format_reward, iou_reward
    from locus.train import build_trainer, parse_config, proxy_data, quiet_known_noise
    disable_progress_bar(); hf_logging.disable_progress_bar()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp, quiet_known_noise():
        tmp = Path(tmp)
        cfg, targs = parse_config(trainer_args(tmp))
        train = proxy_data(cfg, progress=False)["train"]
        trainer = build_trainer(cfg, targs, dataset=train)
        tok = trainer.processing_class.tokenizer
        rows = [train[i] for i in range(N_PROMPTS)]
        assert all(r["prompt"] == rows[0]["prompt"] for r in rows)
        groups, outs = [], []
        for i, row in enumerate(rows):
            torch.manual_seed(SEED + i)
            out = trainer._generate_and_score_completions([row] * G)    # a prompt's G rollouts, as TRL's RepeatSampler lays them out
            texts = [tok.decode(c[m.bool()], skip_special_tokens=True) for c, m in zip(out["completion_ids"], out["completion_mask"])]
            groups.append(dict(row=i, source=row["source"], cue_index=row["cue_index"], size_class=row["size_class"], solution=row["solution"],
                               completions=texts, iou=iou_reward(texts, solution=[row["solution"]] * G), format=format_reward(texts)))
            outs.append(out)
        reward = lambda g: [cfg.iou_weight * a + cfg.format_weight * b for a, b in zip(g["iou"], g["format"])]
        spread = [len(set(reward(g))) > 1 for g in groups]
        pick = sorted([i for i, s in enumerate(spread) if s][:2] + [i for i, s in enumerate(spread) if not s][:1])
        # the moved policy: the LOCUS run's final adapter, loaded into the trainer's adapter (same shapes, same names)
        res = set_peft_model_state_dict(trainer.model, load_file(ADAPTER / "adapter_model.safetensors"))
        assert not res.unexpected_keys, res.unexpected_keys[:3]
        for i in pick:
            o = outs[i]
            with torch.no_grad():
                o["policy_logps"], _, _ = trainer._get_per_token_logps_and_entropies(
                    trainer.model, torch.cat([o["prompt_ids"], o["completion_ids"]], 1), torch.cat([o["prompt_mask"], o["completion_mask"]], 1),
                    o["completion_ids"].size(1), batch_size=G, pixel_values=o["pixel_values"], image_grid_thw=o["image_grid_thw"],
                    num_images=o["num_images"], mm_token_type_ids=o.get("mm_token_type_ids"))
    def rows_of(key, mask_key, side, value):   # the picked groups' rows, unpadded, then padded together as TRL pads a batch
        r = [o[key][k][o[mask_key][k].bool()] for i in pick for o in [outs[i]] for k in range(G)]
        return pad(r, padding_value=value, padding_side=side)
    pad_id = tok.pad_token_id
    tensors = dict(prompt_ids=rows_of("prompt_ids", "prompt_mask", "left", pad_id), prompt_mask=rows_of("prompt_mask", "prompt_mask", "left", 0),
                   completion_ids=rows_of("completion_ids", "completion_mask", "right", pad_id),
                   completion_mask=rows_of("completion_mask", "completion_mask", "right", 0),
                   old_logps=rows_of("old_per_token_logps", "completion_mask", "right", 0.0),
                   ref_logps=rows_of("ref_per_token_logps", "completion_mask", "right", 0.0),
                   policy_logps=rows_of("policy_logps", "completion_mask", "right", 0.0),
                   rewards_iou=torch.tensor([v for i in pick for v in groups[i]["iou"]]),
                   rewards_format=torch.tensor([v for i in pick for v in groups[i]["format"]]),
                   solution=torch.tensor([groups[i]["solution"] for i in pick]))
    for k, i in enumerate(pick):
        scene, crop = rows[i]["images"]
        tensors[f"scene_{k}"] = torch.from_numpy(np.asarray(scene.convert("RGB")).copy())
        tensors[f"crop_{k}"] = torch.from_numpy(np.asarray(crop.convert("RGB")).copy())
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT.with_suffix(".safetensors")))
    meta = dict(description="GRPO rollouts of runs/miniature/pretrained on the miniature proxy task, recorded by tools/record_grpo_group.py",
                config="configs/miniature.yaml", num_generations=G, temperature=targs.temperature, top_p=targs.top_p,
                max_completion_length=targs.max_completion_length, beta=targs.beta, seed=SEED, iou_weight=cfg.iou_weight,
                format_weight=cfg.format_weight, policy_adapter=str(ADAPTER.relative_to(ROOT)), prompt=rows[0]["prompt"],
                batch_rows=pick, groups=groups)
    OUT.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{len(groups)} groups of {G} in {time.time() - t0:.0f} s; {sum(spread)} with a reward spread; batch rows {pick}, rewards "
          f"{[[round(v, 3) for v in reward(groups[i])] for i in pick]}")
    for f in (".safetensors", ".json"): print(OUT.with_suffix(f), f"{OUT.with_suffix(f).stat().st_size / 1024:.0f} KiB")

if __name__ == "__main__":
    main()
