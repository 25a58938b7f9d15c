"""Evaluation throughput: items per second of the harness's `generate` (greedy, left padding) one item at a time vs
batched, on the same items, in the same process. Also checks that both give identical answers. Prints a markdown table.

    python bench/eval_bench.py [--threads 1]           # tiny offline Qwen2.5-VL on CPU
    python bench/eval_bench.py --device cuda --size 7b # real-size Qwen2.5-VL-7B architecture, random weights, on a GPU

Real-size models are built from the published Qwen2.5-VL configs with random weights (no download needed);
they use the offline test tokenizer, so their vocabulary (and lm_head) is ~0.5k entries instead of 152k: the decoder
and vision tower are real size, the output projection is not. Random weights rarely emit EOS, so every answer runs to
`--max-new-tokens`: the worst case.
"""
import argparse, os, platform, time

import torch
from PIL import Image

from locus.evaluate import generate, item_messages, Item
from locus.testing import tiny_qwen25_vl, tiny_processor, tiny_config

REAL = {  # published Qwen2.5-VL configs (text and vision sizes)
    "3b": dict(text=dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2),
               vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048)),
    "7b": dict(text=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4),
               vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584)),
}


def real_size(size, dtype, device, max_pixels):
    from transformers import Qwen2_5_VLForConditionalGeneration
    processor = tiny_processor(max_pixels=max_pixels)
    cfg = tiny_config(processor.tokenizer)
    for k, v in REAL[size]["text"].items(): setattr(cfg.text_config, k, v)
    for k, v in REAL[size]["vision"].items(): setattr(cfg.vision_config, k, v)
    cfg.vision_config.fullatt_block_indexes = [7, 15, 23, 31]
    cfg.text_config.rope_parameters["mrope_section"] = [16, 24, 24]   # head_dim 128
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=dtype)
    tok = processor.tokenizer
    gc = model.generation_config
    gc.pad_token_id, gc.eos_token_id = tok.pad_token_id, tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    return model.eval(), processor


def items(n):
    import skimage.data
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()]
    qs = ["What is the color of the helmet?", "Is there a cat in the image? Answer yes or no.",
          "What is in the cup?", "How many rockets can you see?"]
    return [Item(id=str(k), images=[Image.fromarray(photos[k % 4])], question=qs[k % 4] + f" ({k})", answer=None)
            for k in range(n)]


def run(model, processor, its, batch_size, max_new_tokens):
    out, t = [], time.perf_counter()
    for k in range(0, len(its), batch_size):
        b = its[k:k + batch_size]
        out += generate(model, processor, [item_messages(it) for it in b], [it.images for it in b], max_new_tokens)
    if torch.cuda.is_available(): torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="items")
    ap.add_argument("--batch-size", type=int, default=8, help="prompts per generate call in the batched run")
    ap.add_argument("--max-new-tokens", type=int, default=16, help="generation limit")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--size", default="tiny", choices=["tiny", "3b", "7b"], help="tiny test model or a real-size architecture")
    ap.add_argument("--max-pixels", type=int, default=224 * 224, help="pixel budget, upper end (448*448 or more on a GPU)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's; 1 is faster on a loaded machine)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dtype = torch.float32 if a.device == "cpu" else torch.bfloat16
    if a.size == "tiny": model, processor = tiny_qwen25_vl(dtype=dtype, max_pixels=a.max_pixels); model.to(a.device)
    else: model, processor = real_size(a.size, dtype, a.device, a.max_pixels)
    its = items(a.n)
    run(model, processor, its[:a.batch_size], a.batch_size, a.max_new_tokens)           # warm-up
    one, t1 = run(model, processor, its, 1, a.max_new_tokens)
    bat, tb = run(model, processor, its, a.batch_size, a.max_new_tokens)
    same = sum(x == y for x, y in zip(one, bat))
    toks = sum(o["new_tokens"] for o in bat)
    hw = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"### Evaluation throughput: {a.size} Qwen2.5-VL, {str(dtype).replace('torch.', '')}, {a.device} ({hw})\n")
    print(f"{a.n} items, max {a.max_new_tokens} new tokens ({toks / a.n:.1f} generated on average), pixel budget <= {a.max_pixels}, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}\n")
    print("| generation | batch | seconds | items/s |\n|---|---:|---:|---:|")
    print(f"| one at a time | 1 | {t1:.2f} | {a.n / t1:.2f} |")
    print(f"| batched, left-padded | {a.batch_size} | {tb:.2f} | {a.n / tb:.2f} |")
    print(f"\nbatched / one-at-a-time: **{t1 / tb:.2f}x** items per second; identical greedy answers: {same}/{a.n}")


if __name__ == "__main__":
    main()
