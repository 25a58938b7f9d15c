"""Training on real photos of different sizes, as a user brings them (a COCO-layout folder), with the batch structure of
every shipped config scaled down to the tiny model; every forward's images are checked against its rows."""
import json, subprocess, sys
from pathlib import Path
import pytest
import torch
import yaml

import locus.train as T
from locus.config import parse_config
from locus.batches import check_rows, modality_ids
from locus.testing import coco_photo_folder

CONFIGS = Path(__file__).parents[1] / "configs"

# Each shipped config's batch structure (per_device_train_batch_size : num_generations : gradient_accumulation_steps :
# steps_per_generation), scaled to the tiny model and a 9-row data set. `test_every_config_is_covered` checks that
# each keeps its config's shape: a group split over micro-batches or not, several prompts per micro-batch or not,
# one group sampled per generation (steps_per_generation x batch = G) or a whole step's prompts, and the same levers.
SCALED = {
    "cpu_demo":             dict(per_device_train_batch_size=2, num_generations=2, gradient_accumulation_steps=2),
    "miniature":            dict(per_device_train_batch_size=4, num_generations=2, gradient_accumulation_steps=1),
    "microworld":           dict(per_device_train_batch_size=4, num_generations=2, gradient_accumulation_steps=1),   # 8 prompts x 8, full fine-tuning
    "qwen2.5-vl-3b-qlora":  dict(per_device_train_batch_size=2, num_generations=2, gradient_accumulation_steps=4),
    "qwen2.5-vl-7b-qlora":  dict(per_device_train_batch_size=2, num_generations=2, gradient_accumulation_steps=4),
    "qwen2.5-vl-3b-lean":   dict(per_device_train_batch_size=1, num_generations=2, gradient_accumulation_steps=4, steps_per_generation=2),
    "qwen2.5-vl-7b-lean":   dict(per_device_train_batch_size=1, num_generations=2, gradient_accumulation_steps=4, steps_per_generation=2),
    "qwen2.5-vl-7b-fast":   dict(per_device_train_batch_size=1, num_generations=4, gradient_accumulation_steps=8, steps_per_generation=4),
    "qwen2.5-vl-7b-full":   dict(per_device_train_batch_size=4, num_generations=2, gradient_accumulation_steps=2),
}
LEVERS = ("mode", "train_vision", "share_vision", "offload_embeddings", "generation_chunk")

def shipped(name):
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())

def shape(c):
    pd, G, ga = c["per_device_train_batch_size"], c["num_generations"], c["gradient_accumulation_steps"]
    spg = c.get("steps_per_generation")
    return (pd < G, pd > G, ga > 1, spg is not None and spg * pd == G)

def test_every_config_is_covered():
    names = {p.stem for p in CONFIGS.glob("*.yaml") if "num_generations" in shipped(p.stem)}
    assert names == set(SCALED), names ^ set(SCALED)
    for name, small in SCALED.items():
        assert shape(shipped(name)) == shape(small), name

@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return coco_photo_folder(root / "coco"), root / "cache"

# A random model samples any id, <|image_pad|> included; kept out of the rollouts, check_rows can read whole rows.
# (A completion that does hold one is `test_align_keeps_completions_text`.)
def _vision_ids():
    from locus.testing import tiny_tokenizer
    return tiny_tokenizer().convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"])
NO_PLACEHOLDERS = {"suppress_tokens": _vision_ids()}

@pytest.fixture
def checked(monkeypatch):
    "Every forward of the language model that carries images is checked against its rows."
    import transformers.models.qwen2_5_vl.modeling_qwen2_5_vl as M
    forward, seen = M.Qwen2_5_VLModel.forward, []
    def check(self, input_ids=None, *a, **kw):
        if input_ids is not None and kw.get("pixel_values") is not None:
            seen.append(check_rows(input_ids, kw["image_grid_thw"], self.config.image_token_id, kw["pixel_values"], kw.get("mm_token_type_ids")))
        return forward(self, input_ids, *a, **kw)
    monkeypatch.setattr(M.Qwen2_5_VLModel, "forward", check)
    return seen

def photo_args(ann, cache, out, structure, config=None, steps=2):
    c = shipped(config) if config else {}
    levers = [x for k in LEVERS if k in c for x in (f"--{k}", str(c[k]))]
    return ["--model", "tiny", "--source", "coco", "--annotations", str(ann), "--image_dir", str(ann.parent / "images"),
            "--mix", "small=1.0", "--n_train", "8", "--n_val", "1", "--cues_per_image", "3", "--max_pixels", "50176",
            "--dtype", "float32", "--cache_dir", str(cache), "--output_dir", str(out), "--max_steps", str(steps),
            "--max_completion_length", "8", "--beta", "0.01", "--save_steps", "100", "--sample_every", "0",
            "--gradient_checkpointing", "false", "--disable_tqdm", "true", "--report_to", "none",
            *levers, *[x for k, v in structure.items() for x in (f"--{k}", str(v))]]

@pytest.mark.parametrize("config", sorted(SCALED))
def test_photos_train_with_every_batch_structure(photos, checked, tmp_path, config):
    ann, cache = photos
    cfg, targs = parse_config(photo_args(ann, cache, tmp_path / "run", SCALED[config], config))
    targs.generation_kwargs = NO_PLACEHOLDERS
    summary = T.train(cfg, targs)
    assert summary["steps"] == 2
    data = T.proxy_data(cfg, progress=False)["train"]
    assert len({tuple(r["image_size"]) for r in data}) >= 3            # photos of different sizes met in the batches
    assert checked
    s = SCALED[config]
    if s["per_device_train_batch_size"] * s.get("steps_per_generation", s["gradient_accumulation_steps"]) > s["num_generations"]:
        # several prompts sampled together: some forward held rows of different lengths (padded), as real photos give
        assert [rows for rows in checked if len({sum(r) for r in rows}) > 1], "no forward saw prompts of different lengths"

def test_fixed_size_scenes_still_train(tmp_path, checked):
    args = ["--model", "tiny", "--mode", "lora", "--dtype", "float32", "--max_pixels", str(112 * 112), "--n_train", "8",
            "--n_val", "2", "--synthetic_images", "10", "--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "run"),
            "--max_steps", "2", "--max_completion_length", "8", "--sample_every", "0", "--gradient_checkpointing", "false",
            "--disable_tqdm", "true", "--num_generations", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "4"]
    cfg, targs = parse_config(args); targs.generation_kwargs = NO_PLACEHOLDERS
    assert T.train(cfg, targs)["steps"] == 2
    assert checked and all(len({r[0] for r in rows}) == 1 for rows in checked)   # one scene size (crops still differ)

def test_the_reported_reproduction_runs_from_the_command_line(photos, tmp_path):
    ann, cache = photos
    cfg = dict(model="tiny", source="coco", annotations=str(ann), image_dir=str(ann.parent / "images"), mix="small=1.0",
               n_train=4, n_val=1, max_pixels=50176, num_generations=2, per_device_train_batch_size=2,
               gradient_accumulation_steps=4, max_completion_length=16, bf16=False, use_cpu=True, max_steps=2,
               cache_dir=str(cache), output_dir=str(tmp_path / "run"), sample_every=0)
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run([str(Path(sys.executable).with_name("locus")), "train", "--config", "my.yaml"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert json.loads(r.stdout[r.stdout.index('{\n "output_dir"'):])["steps"] == 2
    noise = [l for l in r.stderr.splitlines() if "gemm_4bit_forward" in l or "FutureWarning" in l]
    assert not noise, noise
    card = (tmp_path / "run" / "README.md").read_text()
    assert "[None]" not in card and 'model="None"' not in card and "tiny-qwen25vl" in card

# --- the split itself, on hand-made batches
IMG, VID, PAD = 7, 8, 0

def batch(side):
    rows = [[1, 2, IMG, IMG, IMG, IMG, 3, IMG, 4], [1, IMG, IMG, 2, IMG, 3]]     # images of 4 + 1 and 2 + 1 visual tokens
    L = max(map(len, rows))
    pad = lambda r: [PAD] * (L - len(r)) + r if side == "left" else r + [PAD] * (L - len(r))
    return torch.tensor([pad(r) for r in rows]), torch.tensor([[1, 4, 4], [1, 2, 2], [1, 2, 4], [1, 2, 2]])

@pytest.mark.parametrize("side", ["left", "right"])
def test_modality_ids_follow_the_ids(side):
    ids, grid = batch(side)
    mm = modality_ids(ids, IMG, VID)
    assert torch.equal(mm == 1, ids == IMG)
    assert check_rows(ids, grid, IMG, torch.zeros(16 + 4 + 8 + 4, 3), mm) == [[4, 1], [2, 1]]

def test_check_rows_names_what_disagrees():
    ids, grid = batch("left")
    right, _ = batch("right")
    with pytest.raises(ValueError, match=r"mm_token_type_ids disagree with input_ids in rows \[1\]"):
        check_rows(ids, grid, IMG, mm_token_type_ids=modality_ids(right, IMG))
    with pytest.raises(ValueError, match="do not match its rows"): check_rows(ids, grid[[2, 3, 0, 1]], IMG)
    with pytest.raises(ValueError, match="pixel_values has 5 patches"): check_rows(ids, grid, IMG, torch.zeros(5, 3))

def test_align_keeps_completions_text():
    "A completion that samples placeholder ids stays text (type 0): only the prompt's placeholders are images."
    from types import SimpleNamespace
    from locus.batches import align_multimodal
    got = {}
    trainer = SimpleNamespace(processing_class=SimpleNamespace(padding_side="right"),
                              model=SimpleNamespace(config=SimpleNamespace(image_token_id=IMG, video_token_id=VID)),
                              _get_per_token_logps_and_entropies=lambda model, ids, mask, keep, **kw: got.update(kw))
    align_multimodal(trainer)
    assert trainer.processing_class.padding_side == "left"
    ids = torch.tensor([[1, IMG, IMG, 2, 5, IMG, VID, 3]])          # prompt of 5 tokens, then a completion of 3
    trainer._get_per_token_logps_and_entropies(None, ids, torch.ones_like(ids), 3, mm_token_type_ids=torch.zeros_like(ids))
    assert got["mm_token_type_ids"].tolist() == [[0, 1, 1, 0, 0, 0, 0, 0]]
