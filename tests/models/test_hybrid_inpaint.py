"""Hybrid fill: the coarse fill's structure, the photo's texture, known pixels untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.models.hybrid_inpaint import hybrid_inpaint


def lap_std(img: np.ndarray, mask: np.ndarray) -> float:
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return float(cv2.Laplacian(img.mean(axis=2), cv2.CV_32F, ksize=1)[inner].std())


@pytest.fixture
def two_fields() -> np.ndarray:
    """Left half reddish grass, right half bluish gravel: both textured, different colours."""
    rng = np.random.default_rng(2)
    noise = cv2.GaussianBlur(rng.normal(0, 0.12, (128, 160, 3)).astype(np.float32), (3, 3), 0.7)
    base = np.zeros((128, 160, 3), np.float32)
    base[:, :80] = (0.7, 0.35, 0.25)
    base[:, 80:] = (0.25, 0.35, 0.7)
    return np.clip(base + noise, 0, 1).astype(np.float32)


@pytest.fixture
def hole() -> np.ndarray:
    mask = np.zeros((128, 160), np.float32)
    mask[34:94, 50:110] = 1  # straddles the boundary between the fields
    return mask


def smooth_truth(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """What a good network predicts: the right colours on each side, no texture."""
    coarse = image.copy()
    flat = cv2.GaussianBlur(image, (0, 0), 6)
    coarse[hole > 0] = flat[hole > 0]
    return coarse


def test_texture_comes_back_and_known_pixels_are_exact(two_fields, hole) -> None:
    coarse = smooth_truth(two_fields, hole)
    out = hybrid_inpaint(two_fields, hole, coarse, seed=0)
    np.testing.assert_array_equal(out[hole == 0], two_fields[hole == 0])
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    real, smudge, ours = (lap_std(x, hole) for x in (two_fields, coarse, out))
    assert smudge < 0.2 * real, "the coarse fill is a smudge"
    assert ours > 0.5 * real, f"texture ratio {ours / real:.2f}"


def test_structure_follows_the_coarse_fill(two_fields, hole) -> None:
    """Each side of the hole keeps the colour the coarse fill gave it (within 0.06)."""
    out = hybrid_inpaint(two_fields, hole, smooth_truth(two_fields, hole), seed=0)
    left, right = out[40:88, 52:72].mean(axis=(0, 1)), out[40:88, 88:108].mean(axis=(0, 1))
    np.testing.assert_allclose(left, (0.7, 0.35, 0.25), atol=0.06)
    np.testing.assert_allclose(right, (0.25, 0.35, 0.7), atol=0.06)


def test_deterministic_and_scaled_work_side(two_fields, hole) -> None:
    coarse = smooth_truth(two_fields, hole)
    a = hybrid_inpaint(two_fields, hole, coarse, seed=4, work_side=64)
    b = hybrid_inpaint(two_fields, hole, coarse, seed=4, work_side=64)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[hole == 0], two_fields[hole == 0])
    assert lap_std(a, hole) > 0.5 * lap_std(two_fields, hole), "texture copied at full size"


def test_bad_shapes_and_degenerate_masks(two_fields, hole) -> None:
    coarse = smooth_truth(two_fields, hole)
    empty = np.zeros_like(hole)
    np.testing.assert_array_equal(hybrid_inpaint(two_fields, empty, coarse), two_fields)
    with pytest.raises(ValueError, match="covers all"):
        hybrid_inpaint(two_fields, np.ones_like(hole), coarse)
    with pytest.raises(ValueError, match="does not match"):
        hybrid_inpaint(two_fields, hole[:10], coarse)
    with pytest.raises(ValueError, match="HxWx3"):
        hybrid_inpaint(two_fields, hole, coarse[:10])
