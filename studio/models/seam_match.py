"""Hide the seam where a copied fill meets the photo: a smooth colour correction at the border.

A fill made of copied texture (PatchMatch's copy-through) has the right grain but not always the
right shade where it touches the known pixels: the copied pieces come from elsewhere in the
photo, with that place's light. The eye sees the step as a seam along the hole's outline, most of
all when outpainting, whose whole border is one straight line.

The correction is the colour step across the border, measured as local means on each side and
carried into the hole by a smooth interpolation, fading to nothing ``reach`` px in:

1. along the hole's inner ring (hole pixels next to known ones), the step is the mean of the
   known pixels near it minus the mean of the filled pixels near it (Gaussian-weighted averages
   over each side only, ``sigma`` px), so grain on either side does not leak in;
2. the step is spread into the hole by normalised convolution (a weighted average of the ring's
   steps, the weights falling off with distance) and multiplied by a ramp that is 1 on the ring
   and 0 from ``reach`` px in.

Only low frequencies change: the copied texture keeps its grain, and known pixels are returned
bit for bit. Contract: float32 HxWx3 images in [0, 1], hole HxW (> 0.5 = filled).
"""

from __future__ import annotations

import cv2
import numpy as np

#: px over which the local means on each side of the border are taken
SIGMA = 1.5
#: px into the hole over which the correction fades out
REACH = 48.0


def match_seam(
    filled: np.ndarray,
    image: np.ndarray,
    hole: np.ndarray,
    *,
    sigma: float = SIGMA,
    reach: float = REACH,
) -> np.ndarray:
    """``filled`` with a smooth correction inside ``hole`` that removes the colour step to the
    known pixels of ``image`` at the hole's border; equal to ``image`` outside the hole."""
    if filled.shape != image.shape or filled.ndim != 3:
        raise ValueError(f"fill {filled.shape} and image {image.shape} must be the same HxWx3")
    inside = hole > 0.5
    known = ~inside
    out = image.astype(np.float32, copy=True)
    if not inside.any() or not known.any():
        out[inside] = filled[inside]
        return out
    filled = filled.astype(np.float32, copy=False)
    ring = inside & (cv2.dilate(known.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    step = _side_mean(image, known, sigma) - _side_mean(filled, inside, sigma)
    correction = _spread(step, ring, reach)
    dist = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    ramp = np.clip(1.0 - (dist - 1.0) / reach, 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no crease where the ramp ends
    corrected = filled + correction * ramp[..., None]
    out[inside] = np.clip(corrected[inside], 0.0, 1.0)
    return out


def _side_mean(img: np.ndarray, side: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted mean of ``img`` over the pixels of ``side`` only, everywhere."""
    w = side.astype(np.float32)
    num = cv2.GaussianBlur(img * w[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(w, (0, 0), sigma)
    return num / np.maximum(den, 1e-6)[..., None]


def _spread(values: np.ndarray, where: np.ndarray, reach: float) -> np.ndarray:
    """``values`` known on ``where`` interpolated everywhere by normalised convolution.

    Computed on a copy scaled so that the Gaussian spans a few px (the field is smooth), which
    keeps it fast on large holes.
    """
    h, w = where.shape
    scale = min(1.0, 4.0 / max(1.0, reach / 4.0))
    weights = where.astype(np.float32)
    num = values * weights[..., None]
    if scale < 1.0:
        size = (max(4, round(w * scale)), max(4, round(h * scale)))
        num = cv2.resize(num, size, interpolation=cv2.INTER_AREA)
        weights = cv2.resize(weights, size, interpolation=cv2.INTER_AREA)
    s = max(1.0, reach / 4.0 * scale)
    num = cv2.GaussianBlur(num, (0, 0), s)
    den = cv2.GaussianBlur(weights, (0, 0), s)
    field = num / np.maximum(den, 1e-6)[..., None]
    if scale < 1.0:
        field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
    return field
