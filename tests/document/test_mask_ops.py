"""Mask operations against brute-force numpy references; one undo step each, sized by change."""

from __future__ import annotations

import numpy as np
import pytest

from studio.document import Document, mask_ops
from studio.geometry import Rect


def soft_mask(h: int = 40, w: int = 52, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = (rng.random((h, w)) > 0.92).astype(np.float32) * rng.random((h, w)).astype(np.float32)
    m[10:18, 20:30] = 1.0
    return m


def disk_reference(m: np.ndarray, r: int, op) -> np.ndarray:
    """op (max/min) over the Euclidean disk |d| <= r, the mask continuing as its edge value."""
    h, w = m.shape
    p = np.pad(m, r, mode="edge")
    out = None
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                s = p[r + dy : r + dy + h, r + dx : r + dx + w]
                out = s.copy() if out is None else op(out, s)
    return out


@pytest.mark.parametrize("radius", [1, 2, 3, 5, 9])
def test_grow_and_shrink_equal_disk_max_and_min(radius) -> None:
    m = soft_mask()
    np.testing.assert_array_equal(mask_ops.grow(m, radius), disk_reference(m, radius, np.maximum))
    np.testing.assert_array_equal(mask_ops.shrink(m, radius), disk_reference(m, radius, np.minimum))


def test_grow_of_a_point_is_a_disk_and_the_border_never_erodes() -> None:
    m = np.zeros((31, 31), np.float32)
    m[15, 15] = 1
    grown = mask_ops.grow(m, 6)
    yy, xx = np.mgrid[0:31, 0:31]
    np.testing.assert_array_equal(grown, ((yy - 15) ** 2 + (xx - 15) ** 2 <= 36).astype(np.float32))
    full = np.ones((20, 30), np.float32)
    np.testing.assert_array_equal(mask_ops.shrink(full, 5), full)
    np.testing.assert_array_equal(mask_ops.feather(full, 5), full)


def gaussian_reference(m: np.ndarray, sigma: float) -> np.ndarray:
    r = int(np.ceil(4 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-x * x / (2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(m.astype(np.float64), r, mode="edge")
    rows = np.stack([np.convolve(row, k, mode="valid") for row in p])
    return np.stack([np.convolve(col, k, mode="valid") for col in rows.T]).T


def box3_reference(m: np.ndarray, widths: list[int]) -> np.ndarray:
    margin = sum(w // 2 for w in widths)
    a = np.pad(m.astype(np.float64), margin, mode="edge")
    for w in widths:
        k = np.full(w, 1.0 / w)
        a = np.stack([np.convolve(row, k, mode="valid") for row in a])
        a = np.stack([np.convolve(col, k, mode="valid") for col in a.T]).T
    return a


@pytest.mark.parametrize("radius", [1, 2, 3, 4])
def test_small_feathers_are_an_exact_gaussian(radius) -> None:
    m = soft_mask(seed=radius)
    ref = gaussian_reference(m, mask_ops.feather_sigma(radius))
    np.testing.assert_allclose(mask_ops.feather(m, radius), ref, atol=1e-5)


@pytest.mark.parametrize("radius", [10, 16, 30])
def test_large_feathers_are_three_box_blurs_close_to_a_gaussian(radius) -> None:
    m = soft_mask(60, 70, seed=radius)
    out = mask_ops.feather(m, radius)
    widths = mask_ops.box_widths(mask_ops.feather_sigma(radius))
    np.testing.assert_allclose(out, box3_reference(m, widths), atol=1e-5)
    gauss = gaussian_reference(m, mask_ops.feather_sigma(radius))
    assert np.abs(out - gauss).max() < 0.02, "three boxes stay within 2 % of the Gaussian"


def test_invert_and_fills() -> None:
    m = np.zeros((30, 40), np.float32)
    m[5:25, 5] = m[5:25, 30] = m[5, 5:31] = m[24, 5:31] = 1.0  # a closed ring
    np.testing.assert_array_equal(mask_ops.invert(m), 1 - m)
    filled = mask_ops.fill_holes(m)
    expected = m.copy()
    expected[6:24, 6:30] = 1.0
    np.testing.assert_array_equal(filled, expected)
    np.testing.assert_array_equal(mask_ops.flood_fill(m, 10, 10), expected)
    outside = mask_ops.flood_fill(m, 0, 0)
    assert outside[0, 0] == 1 and outside[10, 10] == 0, "outside fill stops at the ring"
    np.testing.assert_array_equal(mask_ops.flood_fill(m, 99, 99), m)  # off the image: no-op


def test_mask_from_pixels_and_back() -> None:
    grey = np.array([[0, 128, 255]], np.uint8)
    np.testing.assert_allclose(mask_ops.mask_from_pixels(grey), [[0, 128 / 255, 1]])
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 1, 3] = 255
    np.testing.assert_array_equal(mask_ops.mask_from_pixels(rgba), [[0, 1]])
    white = np.full((1, 1, 3), 255, np.uint16) * 257
    assert mask_ops.mask_from_pixels(white)[0, 0] == pytest.approx(1.0)
    m = np.array([[0.0, 0.5, 1.0]], np.float32)
    np.testing.assert_array_equal(mask_ops.mask_to_pixels(m), [[0, 128, 255]])


def test_resize_mask_keeps_regions_and_coverage() -> None:
    m = np.zeros((40, 60), np.float32)
    m[:20] = 1
    up = mask_ops.resize_mask(m, 120, 80)
    assert up.shape == (80, 120) and up[:38].min() == 1 and up[42:].max() == 0
    down = mask_ops.resize_mask(m, 15, 10)
    assert down.mean() == pytest.approx(0.5, abs=0.02) and down[0].min() == 1


def test_each_operation_is_one_step_holding_only_the_changed_box() -> None:
    doc = Document(1024, 1024)
    doc.mask[500:520, 600:640] = 1
    mask_ops.grow_document(doc, 4)
    step = doc.history.current_step()
    assert step.name == "Grow mask 4 px"
    assert step.nbytes == 2 * 4 * (20 + 8) * (40 + 8), "old + new pixels of the grown box only"
    mask_ops.shrink_document(doc, 2)
    mask_ops.feather_document(doc, 3)
    doc.invert_mask()
    doc.fill_mask(0.0, "Clear mask")
    assert [s.name for s in doc.history.steps] == [
        "Grow mask 4 px",
        "Shrink mask 2 px",
        "Feather mask 3 px",
        "Invert mask",
        "Clear mask",
    ]
    doc.jump_to(0)
    assert doc.mask.sum() == 20 * 40 and doc.mask[500:520, 600:640].all()
    doc.jump_to(4)
    assert doc.mask.min() >= 0 and doc.mask[0, 0] == 1.0
    assert mask_ops.grow_document(Document(8, 8), 3) is None, "nothing to grow: no step"


def test_pixels_out_of_reach_stay_bit_identical() -> None:
    doc = Document(200, 150)
    doc.mask[:] = np.float32(0.3)
    doc.mask[70:80, 90:100] = 1.0
    before = doc.mask.copy()
    mask_ops.feather_document(doc, 6)
    reach = mask_ops.feather_reach(6)
    changed = np.argwhere(doc.mask != before)
    assert changed.size
    box = Rect(90, 70, 10, 10).grow(reach)
    assert changed[:, 0].min() >= box.y and changed[:, 0].max() < box.bottom
    assert changed[:, 1].min() >= box.x and changed[:, 1].max() < box.right
    assert doc.history.current_step().nbytes <= 2 * 4 * box.area
