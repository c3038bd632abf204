"""Seam matching: the colour step at a copied fill's border goes, its texture and the photo stay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.models.seam_match import match_seam


@pytest.fixture
def photo() -> np.ndarray:
    rng = np.random.default_rng(5)
    noise = cv2.GaussianBlur(rng.normal(0, 0.08, (160, 200, 3)).astype(np.float32), (3, 3), 0.7)
    return np.clip(np.float32(0.5) + noise, 0, 1).astype(np.float32)


@pytest.fixture
def right_strip() -> np.ndarray:
    """An outpaint-like hole: the rightmost 120 px."""
    hole = np.zeros((160, 200), np.float32)
    hole[:, 80:] = 1
    return hole


def offset_fill(photo: np.ndarray, hole: np.ndarray, offset: float) -> np.ndarray:
    """The photo's own texture inside the hole, shifted in shade: a copy with a seam."""
    fill = photo.copy()
    fill[hole > 0] = np.clip(photo[hole > 0] + offset, 0, 1)
    return fill


def test_known_pixels_come_back_bit_identical(photo, right_strip):
    out = match_seam(offset_fill(photo, right_strip, 0.2), photo, right_strip)
    assert np.array_equal(out[right_strip == 0], photo[right_strip == 0])


def test_the_step_at_the_border_goes_and_fades_out_with_distance(photo, right_strip):
    out = match_seam(offset_fill(photo, right_strip, 0.2), photo, right_strip, reach=48)
    shift = (out - photo).mean(axis=(0, 2))  # mean shade change per column
    assert abs(shift[80]) < 0.03  # the first filled column matches the photo
    assert abs(shift[82:90].mean()) < 0.05
    assert shift[80 + 60 :].min() > 0.19  # beyond the reach the copy is left as it was
    assert np.all(np.diff(shift[80:140]) >= -1e-3)  # a ramp, no overshoot


def test_texture_is_kept(photo, right_strip):
    fill = offset_fill(photo, right_strip, 0.15)
    out = match_seam(fill, photo, right_strip)

    def grain(img: np.ndarray) -> np.ndarray:
        return cv2.Laplacian(img.mean(axis=2), cv2.CV_32F, ksize=1)[4:-4, 84:-4]

    assert np.abs(grain(out) - grain(fill)).max() < 0.02


def test_a_matching_fill_is_left_alone(photo, right_strip):
    out = match_seam(photo, photo, right_strip)
    assert np.abs(out - photo).max() < 0.02


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_empty_and_full_holes(photo, value):
    hole = np.full(photo.shape[:2], value, np.float32)
    fill = np.zeros_like(photo)
    expected = fill if value else photo
    assert np.array_equal(match_seam(fill, photo, hole), expected)


def test_mismatched_shapes_are_refused(photo, right_strip):
    with pytest.raises(ValueError, match="same HxWx3"):
        match_seam(photo[:10], photo, right_strip)


def test_the_outpaint_filler_matches_its_copy_to_the_photo(photo):
    """The outpaint filler is the unguided copy plus seam matching: same known pixels, and the
    new area differs from a plain copy only by a smooth shade correction."""
    from studio.engine.outpaint_texture import texture_outpaint_filler
    from studio.models.hybrid_inpaint import hybrid_inpaint

    image = photo.copy()
    image[:, :60] *= 0.5  # a darker left part for the copy to draw from
    hole = np.zeros(photo.shape[:2], np.float32)
    hole[:, 150:] = 1

    def network(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = img.copy()
        out[mask > 0.5] = img[mask <= 0.5].mean(axis=0)
        return out

    matched = texture_outpaint_filler(network)(image, hole)
    plain = hybrid_inpaint(
        image,
        hole,
        network(image, hole),
        work_side=256,
        vote_share=0.0,
        guide_weight=0.0,
        iterations=4,
        finest_iterations=2,
    )
    assert np.array_equal(matched[:, :150], image[:, :150])
    difference = (matched - plain)[:, 150:]
    assert np.abs(difference).max() > 1e-3  # the seam was matched
    grain = cv2.Laplacian(difference.mean(axis=2), cv2.CV_32F, ksize=1)[2:-2, 2:-2]
    assert np.abs(grain).max() < 0.01  # ... by a smooth correction only
