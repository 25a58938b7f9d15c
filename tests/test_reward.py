"Fuzz and contract tests for locus.reward (the notebook shows the examples)."
import math, time
import pytest
from hypothesis import given, settings, strategies as st
from locus.reward import parse_box, has_format, iou_reward, format_reward, locus_reward, make_locus_reward, box_parsed

def _ok(box):
    return box is None or (len(box) == 4 and all(math.isfinite(v) for v in box) and box[0] < box[2] and box[1] < box[3])

@settings(max_examples=1500)
@given(st.text())
def test_parse_never_raises_on_any_text(s):
    assert _ok(parse_box(s)) and has_format(s) in (True, False)

num = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.sampled_from(["", "-", ".", "1e", "1e999", "nan", "inf", "0x10", "١٢"]))
sep = st.sampled_from([",", ", ", " ,", ",\n", " ", ";", ",,"])
wrap = st.sampled_from(["[{}]", "({}, {}), ({}, {})", '{{"bbox_2d": [{}]}}', "<answer>[{}]</answer>", "<think>[{}]</think>",
                        "<answer>```json\n[{{\"bbox_2d\": [{}]}}]\n```</answer>", "<|box_start|>({},{}),({},{})<|box_end|>"])

@settings(max_examples=1500)
@given(st.lists(num, min_size=0, max_size=6), sep, wrap, st.text(max_size=20), st.text(max_size=20))
def test_parse_near_miss_boxes(nums, s, w, pre, post):
    inner = s.join(nums)
    text = pre + (w.format(*(nums + [""] * 4)[:4]) if w.count("{}") == 4 else w.format(inner)) + post
    assert _ok(parse_box(text))

@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=4), st.sampled_from(
    ["<think>x</think><answer>[{}, {}, {}, {}]</answer>", '{{"bbox_2d": [{}, {}, {}, {}], "label": "a"}}',
     "<|box_start|>({},{}),({},{})<|box_end|>", "Answer: [{},{},{},{}]."]))
def test_parse_reads_what_was_written(v, template):
    x1, y1, x2, y2 = v
    box = parse_box(template.format(x1, y1, x2, y2))
    if min(x1, x2) < max(x1, x2) and min(y1, y2) < max(y1, y2):
        assert box == [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]
    else: assert box is None

@pytest.mark.parametrize("text", ["[" + "1" * 1_000_000, "(" + "2" * 500_000 + "," * 1000, "<answer>" * 100_000 + "[1,2,3",
                                  "1." * 300_000, "[1, 2, 3, " * 100_000])
def test_pathological_strings_are_linear(text):
    t = time.perf_counter()
    parse_box(text); has_format(text)
    assert time.perf_counter() - t < 2.0   # a guard against catastrophic backtracking (quadratic would take minutes)

def test_trl_contract_and_group_alignment():
    "Scores line up with their own ground truth, as TRL repeats each prompt's columns across its group."
    truths = [[0, 0, 10, 10], [50, 50, 60, 60]]
    comps = ["<think>a</think><answer>[0, 0, 10, 10]</answer>", "<answer>[50, 50, 60, 60]</answer>"] * 2
    sol = [truths[0], truths[1]] * 2
    conv = [[{"role": "assistant", "content": c}] for c in comps]
    kw = dict(prompts=[[{"role": "user", "content": "q"}]] * 4, completion_ids=[[1]] * 4, trainer_state=None, image_size=[(64, 64)] * 4)
    assert iou_reward(conv, solution=sol, **kw) == [1.0, 1.0, 1.0, 1.0]
    assert iou_reward(conv, solution=sol[::-1], **kw) == [0.0] * 4
    assert format_reward(conv, **kw) == [1.0, 0.0, 1.0, 0.0]
    assert locus_reward(conv, solution=sol, **kw) == pytest.approx([1.0, 0.9, 1.0, 0.9])
    assert make_locus_reward(0.5, 0.5)(comps, solution=sol) == pytest.approx([1.0, 0.5, 1.0, 0.5])
    assert box_parsed(comps + ["nothing"]) == [1.0] * 4 + [0.0]

def test_strict_reads_only_the_answer():
    c = ["<think>maybe [0, 0, 10, 10]</think>"]
    assert iou_reward(c, solution=[[0, 0, 10, 10]]) == [1.0]
    assert iou_reward(c, solution=[[0, 0, 10, 10]], strict=True) == [0.0]

@pytest.mark.parametrize("bad", [[1, 2, 3], [5, 5, 5, 9], None, "no box", [0, 0, float("nan"), 1]])
def test_bad_ground_truth_names_the_row(bad):
    with pytest.raises(ValueError, match=r"solution\[1\]"):
        iou_reward(["[0,0,1,1]", "[0,0,1,1]"], solution=[[0, 0, 1, 1], bad])

def test_missing_solution_column():
    with pytest.raises(ValueError, match="No `solution` column"): iou_reward(["[0,0,1,1]"])
