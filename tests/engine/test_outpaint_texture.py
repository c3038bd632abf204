"""Outpaint with Studio's learned fill: texture copied from the photo, not flat colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.jobs import JobRequest, OutpaintParams
from studio.engine.messages import JobFinished
from studio.engine.outpaint_texture import texture_outpaint_filler
from studio.engine.runner import JobRunner


def grass(h: int = 120, w: int = 160) -> np.ndarray:
    """Fine random texture over a gentle gradient (grass, gravel, a wooden table)."""
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.normal(0, 40, (h, w, 3)).astype(np.float32), (0, 0), 0.8)
    ramp = np.linspace(60, 140, w, dtype=np.float32)[None, :, None]
    return np.clip(ramp + noise, 0, 255).astype(np.uint8)


def detail(img: np.ndarray) -> float:
    return float(cv2.Laplacian(img.astype(np.float32).mean(axis=2), cv2.CV_32F).std())


def smudge(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A stand-in network: the mean known colour in the hole (flat, as a wide margin was)."""
    out = image.copy()
    out[hole > 0.5] = image[hole <= 0.5].mean(axis=0)
    return out


def test_the_filler_copies_texture_over_a_flat_network_fill() -> None:
    img = grass().astype(np.float32) / 255
    pad = cv2.copyMakeBorder(img, 0, 0, 0, 80, cv2.BORDER_REFLECT_101)
    hole = np.zeros(pad.shape[:2], np.float32)
    hole[:, 160:] = 1
    out = texture_outpaint_filler(smudge)(pad, hole)
    np.testing.assert_array_equal(out[:, :160], pad[:, :160])
    new = out[:, 170:]
    assert detail(new) > 0.6 * detail(img), (detail(new), detail(img))
    np.testing.assert_array_equal(out, texture_outpaint_filler(smudge)(pad, hole))  # seeded


@pytest.mark.parametrize("method", ["studio-inpaint", "studio-inpaint-hybrid", "auto"])
def test_outpaint_with_a_learned_method_continues_the_texture(method: str) -> None:
    src = grass()
    request = JobRequest(OutpaintParams(method, right=96, top=24, feather=6), src)
    out = list(JobRunner().run(request))[-1]
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    assert out.image.shape == (120 + 24, 160 + 96, 3)
    # the original, beyond the feather at the seam, is bit-identical
    mask = np.ones(out.image.shape[:2], np.float32)
    mask[24:, :160] = 0
    untouched = grow_and_feather(mask, 0, 6) == 0
    np.testing.assert_array_equal(
        out.image[untouched], np.pad(src, ((24, 0), (0, 96), (0, 0)))[untouched]
    )
    new = out.image[30:, 170:]
    assert detail(new) > 0.5 * detail(src), (detail(new), detail(src))  # not a flat block
    assert out.info["method"] == method
