"""PatchMatch inpainting: copies texture where diffusion blurs; never touches known pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.models.patchmatch import patchmatch_inpaint


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    err = ((a - b) ** 2)[mask > 0.5].mean()
    return float(10 * np.log10(1.0 / err))


@pytest.fixture
def texture() -> np.ndarray:
    y, x = np.mgrid[0:128, 0:128]
    return np.stack(
        [
            (np.sin(x / 3.0) > 0) * 0.8 + 0.1,
            (np.sin(y / 4.0) > 0) * 0.6 + 0.2,
            ((x // 8 + y // 8) % 2) * 0.5 + 0.25,
        ],
        2,
    ).astype(np.float32)


@pytest.fixture
def box_mask() -> np.ndarray:
    mask = np.zeros((128, 128), np.float32)
    mask[40:80, 50:90] = 1
    return mask


def test_regular_texture_is_continued_far_better_than_telea(texture, box_mask) -> None:
    out = patchmatch_inpaint(texture, box_mask, seed=0)
    u8 = (texture * 255 + 0.5).astype(np.uint8)
    telea = cv2.inpaint(u8, box_mask.astype(np.uint8), 3, cv2.INPAINT_TELEA) / 255.0
    ours, theirs = masked_psnr(out, texture, box_mask), masked_psnr(telea, texture, box_mask)
    assert ours > theirs + 4.0, f"PatchMatch {ours:.1f} dB vs Telea {theirs:.1f} dB in the hole"


def test_known_pixels_are_bit_identical_and_seed_is_deterministic(texture, box_mask) -> None:
    a = patchmatch_inpaint(texture, box_mask, seed=3)
    b = patchmatch_inpaint(texture, box_mask, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[box_mask == 0], texture[box_mask == 0])
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_border_mask_empty_mask_and_full_mask(texture) -> None:
    border = np.zeros((128, 128), np.float32)
    border[:, :12] = 1
    out = patchmatch_inpaint(texture, border)
    assert np.isfinite(out).all() and np.array_equal(out[:, 12:], texture[:, 12:])
    np.testing.assert_array_equal(patchmatch_inpaint(texture, np.zeros((128, 128))), texture)
    with pytest.raises(ValueError, match="known pixels"):
        patchmatch_inpaint(texture, np.ones((128, 128)))
    with pytest.raises(ValueError, match="does not match"):
        patchmatch_inpaint(texture, np.zeros((10, 10)))


def test_a_guiding_fill_decides_the_structure(texture, box_mask) -> None:
    """Matched on the guide's low-pass too, the fill follows the guide where the borders say
    otherwise: a dark field all round the hole, a bright patch elsewhere, and a guide that puts
    something bright in the hole's middle."""
    image = texture * np.float32(0.4)
    image[96:, 96:] = texture[96:, 96:]  # the bright texture exists, far from the hole
    guide = image.copy()
    guide[box_mask > 0] = image[box_mask > 0].mean(axis=0)
    guide[50:70, 60:80] = texture[96:, 96:].mean(axis=(0, 1))
    bright = float(texture[96:, 96:].mean())
    guided = patchmatch_inpaint(image, box_mask, init=guide, guide_weight=3.0)
    plain = patchmatch_inpaint(image, box_mask)
    np.testing.assert_array_equal(guided[box_mask == 0], image[box_mask == 0])
    middle = (slice(53, 67), slice(63, 77))
    dark = float(image[box_mask == 0].mean())
    # unguided, the borders decide (dark); guided, the middle moves well towards the bright
    assert abs(plain[middle].mean() - dark) < 0.05, (plain[middle].mean(), dark)
    assert guided[middle].mean() - plain[middle].mean() > 0.3 * (bright - dark)
