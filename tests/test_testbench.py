"""The offline test bench (`locus.testing`): round trip through disk, processor registration, image-token counts,
LoRA on the tiny model. Everything here runs on CPU in seconds, with no network."""
import json, shutil

import pytest
import torch
from peft import LoraConfig, get_peft_model
from PIL import Image
from skimage import data
from transformers import AutoProcessor

from locus.testing import (Qwen2_5_VLImageOnlyProcessor, TINY_MAX_PIXELS, TINY_MIN_PIXELS, crop_pair_inputs,
                           load_pretrained_vlm, load_processor, save_pretrained_vlm, smart_resize, tiny_processor,
                           tiny_qwen25_vl, tiny_tokenizer, torchvision_works, train_bpe)

BOX = (150, 20, 330, 200)  # the astronaut's head, (x1, y1, x2, y2)


@pytest.fixture(scope="module")
def astronaut():
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def bench():
    return tiny_qwen25_vl(seed=0)


def test_save_reload_gives_identical_logits(bench, astronaut, tmp_path):
    model, processor = bench
    inputs = crop_pair_inputs(processor, astronaut, BOX)
    with torch.no_grad(): before = model(**inputs).logits
    path = save_pretrained_vlm(model, processor, tmp_path / "tiny")
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    model2, processor2 = load_pretrained_vlm(path)
    inputs2 = crop_pair_inputs(processor2, astronaut, BOX)
    assert all(torch.equal(inputs[k], inputs2[k]) for k in inputs)
    with torch.no_grad(): after = model2(**inputs2).logits
    assert torch.equal(before, after)


def test_autoprocessor_returns_full_processor_not_tokenizer(tmp_path):
    tiny_processor().save_pretrained(tmp_path)
    assert json.loads((tmp_path / "processor_config.json").read_text())["processor_class"] == "Qwen2_5_VLImageOnlyProcessor"
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(processor, Qwen2_5_VLImageOnlyProcessor)
    assert hasattr(processor, "image_processor") and not hasattr(processor, "video_processor")
    assert processor.image_processor.size.longest_edge == TINY_MAX_PIXELS


@pytest.mark.parametrize("image_name", ["astronaut", "chelsea"])  # square 512x512 and landscape 451x300
@pytest.mark.parametrize("budget", [(TINY_MIN_PIXELS, TINY_MAX_PIXELS), (28 * 28, 112 * 112), (56 * 56, 448 * 448)])
def test_two_image_prompt_has_one_pad_token_per_visual_token(image_name, budget):
    image = Image.fromarray(getattr(data, image_name)())
    processor = tiny_processor(*budget)
    box = (40, 30, 40 + image.width // 3, 30 + image.height // 4)
    inputs = crop_pair_inputs(processor, image, box)
    sizes = [smart_resize(im.height, im.width, 28, *budget) for im in (image, image.crop(box))]
    assert inputs["image_grid_thw"].tolist() == [[1, h // 14, w // 14] for h, w in sizes]
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (inputs["input_ids"] == pad).sum().item() == sum(h * w // 784 for h, w in sizes)
    assert (inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")).sum().item() == 2


def test_lora_on_language_model_trains_only_lora(astronaut):
    model, processor = tiny_qwen25_vl(seed=1)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj)")
    model = get_peft_model(model, config)
    lora_names = [n for n, p in model.named_parameters() if "lora_" in n]
    assert lora_names and all(".language_model." in n and ("q_proj" in n or "v_proj" in n) for n in lora_names)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(lora_names)
    model.train()
    inputs = crop_pair_inputs(processor, astronaut, BOX)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):  # lora_B starts at zero, so lora_A only gets a gradient after one step
        opt.zero_grad()
        model(**inputs, labels=inputs["input_ids"]).loss.backward()
        opt.step()
    for n, p in model.named_parameters():
        if n in lora_names: assert p.grad is not None and p.grad.abs().sum() > 0, n
        else: assert p.grad is None, n


def test_same_seed_same_weights_and_tokenizer_is_deterministic():
    vocab = tiny_tokenizer().get_vocab()
    train_bpe.cache_clear()
    assert tiny_tokenizer().get_vocab() == vocab
    a, b, c = (tiny_qwen25_vl(seed=s)[0].state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_load_processor_on_hub_layout_applies_budget(tmp_path, astronaut):
    """A checkpoint laid out like Qwen/Qwen2.5-VL-7B-Instruct: stock processor class, legacy min/max_pixels keys."""
    tiny_processor().save_pretrained(tmp_path)
    pp = json.loads((tmp_path / "processor_config.json").read_text())["image_processor"]
    pp = {k: v for k, v in pp.items() if k != "size"} | {"min_pixels": 3136, "max_pixels": 12845056,
          "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(pp))
    (tmp_path / "processor_config.json").unlink()
    processor = load_processor(tmp_path, min_pixels=784, max_pixels=112 * 112)
    if not torchvision_works(): assert isinstance(processor, Qwen2_5_VLImageOnlyProcessor)
    grid = crop_pair_inputs(processor, astronaut, BOX)["image_grid_thw"]
    assert grid[0].tolist() == [1, 8, 8]  # 512x512 -> 112x112 within the budget, not the checkpoint's 12.8 MP
    with pytest.raises(ValueError, match="remote code"): load_processor(tmp_path, trust_remote_code=True)


def test_load_processor_falls_back_when_autoprocessor_returns_a_tokenizer(tmp_path, monkeypatch):
    "transformers 5.17 with torchvision: AutoProcessor on a checkpoint saved with the image-only processor gave a bare tokenizer."
    import locus.testing as T
    from transformers import AutoProcessor
    path = T.tiny_checkpoint(tmp_path / "ck")
    tok = T.tiny_tokenizer()
    monkeypatch.setattr(T, "torchvision_works", lambda: True)
    monkeypatch.setattr(AutoProcessor, "from_pretrained", classmethod(lambda cls, *a, **k: tok))
    p = T.load_processor(path, min_pixels=3136, max_pixels=50176)
    assert hasattr(p, "image_processor") and p.image_processor.size.longest_edge == 50176


def test_load_processor_keeps_the_saved_pixel_budget(tmp_path, astronaut):
    "A checkpoint saved at 50,176 pixels is loaded at 50,176, as AutoProcessor reads it, unless another budget is asked for."
    import locus.testing as T
    path = T.tiny_checkpoint(tmp_path / "ck", max_pixels=50176)
    size = lambda p: (p.image_processor.size.shortest_edge, p.image_processor.size.longest_edge)
    assert size(T.load_processor(path)) == (T.TINY_MIN_PIXELS, 50176)
    assert size(T.load_processor(path, max_pixels=12544)) == (T.TINY_MIN_PIXELS, 12544)
    grid = T.crop_pair_inputs(T.load_processor(path), astronaut, BOX)["image_grid_thw"]
    assert grid[0].tolist() == [1, 16, 16]           # 512 x 512 -> 224 x 224: 64 visual tokens, not the library default's 1,280
