"Property tests for locus.boxes (the notebook shows examples; here hypothesis tries thousands)."
import math
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from locus.boxes import iou, box_iou, box_area, convert_box, resized_size, FRAMES

coord = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
anyfloat = st.floats(allow_nan=True, allow_infinity=True)

@st.composite
def boxes(draw, valid=True):
    x1, y1 = draw(coord), draw(coord)
    if not valid: return [x1, y1, draw(coord), draw(coord)]
    return [x1, y1, x1 + draw(st.floats(1e-2, 1e4)), y1 + draw(st.floats(1e-2, 1e4))]

@given(boxes(valid=False), boxes(valid=False))
def test_symmetric_and_bounded(a, b):
    r = iou(a, b)
    assert 0.0 <= r <= 1.0 and r == iou(b, a)

@given(st.lists(anyfloat, min_size=4, max_size=4), st.lists(anyfloat, min_size=4, max_size=4))
def test_never_nan(a, b):
    r = iou(a, b)
    assert 0.0 <= r <= 1.0 and not math.isnan(r)
    m = box_iou([a], [b])
    assert m.shape == (1, 1) and 0.0 <= m[0, 0] <= 1.0

@given(boxes())
def test_identity(a):
    assert iou(a, a) == pytest.approx(1.0)

@given(boxes(), st.floats(0, 1), st.floats(0, 1), st.floats(0.05, 1), st.floats(0.05, 1))
def test_containment_is_area_ratio(a, fx, fy, fw, fh):
    w, h = a[2] - a[0], a[3] - a[1]
    x1, y1 = a[0] + fx * w * (1 - fw), a[1] + fy * h * (1 - fh)
    inner = [x1, y1, x1 + fw * w, y1 + fh * h]
    assert iou(inner, a) == pytest.approx(box_area(inner) / box_area(a), rel=1e-6, abs=1e-9)

@settings(max_examples=50)
@given(st.lists(boxes(valid=False), min_size=1, max_size=6), st.lists(boxes(valid=False), min_size=1, max_size=6))
def test_pairwise_matches_scalar(A, B):
    M = box_iou(A, B)
    np.testing.assert_allclose(M, [[iou(a, b) for b in B] for a in A], atol=1e-9)

def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    A = torch.tensor([[0, 0, 10, 10], [0, 0, 5, 5]])
    M = box_iou(A, A)
    assert isinstance(M, torch.Tensor) and M.dtype == torch.float32
    torch.testing.assert_close(M, torch.tensor([[1.0, 0.25], [0.25, 1.0]]))

@settings(deadline=None)
@given(st.integers(16, 5000), st.integers(16, 5000), boxes(), st.sampled_from(FRAMES), st.sampled_from(FRAMES))
def test_round_trip(W, H, b, f1, f2):
    rs = resized_size(W, H, max_pixels=1_003_520) if max(W, H) / min(W, H) < 200 else (W, H)
    back = convert_box(convert_box(b, "pixels", f1, (W, H), rs), f1, "pixels", (W, H), rs)
    tol = max(W, H) / 1000 if f1 == "norm1000" else 1e-6 * (1 + max(map(abs, b)))
    np.testing.assert_allclose(back, b, atol=tol)
    # IoU is invariant to the (per-axis) frame change: both boxes in the same frame score the same
    c = [b[0] + 1, b[1], b[2] + 1, b[3]]
    if f2 != "norm1000":
        assert iou(convert_box(b, "pixels", f2, (W, H), rs), convert_box(c, "pixels", f2, (W, H), rs)) == pytest.approx(iou(b, c), abs=1e-6)

def test_array_in_array_out():
    A = np.array([[0, 0, 100, 50], [10, 10, 20, 20]])
    out = convert_box(A, "pixels", "norm1", (200, 100))
    assert isinstance(out, np.ndarray) and out.shape == (2, 4)
    np.testing.assert_allclose(out[0], [0, 0, 0.5, 0.5])
    with pytest.raises(ValueError, match="4 numbers"): convert_box([1, 2, 3], "pixels", "norm1", (10, 10))
