"""Image-restoration measures between the current image and the original: PSNR and SSIM.

Both take RGB(A) uint8 HxWxC arrays of one size (alpha is ignored) and use all three colour
channels, as inpainting papers do. SSIM follows Wang et al. 2004 as implemented by
scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)``: an 11-tap Gaussian window, K1 = 0.01,
K2 = 0.03, reflect padding, the 5 px border left out of the mean, then averaged over channels.

Edits are usually local, so only the bounding box of the pixels that differ (plus the window
margin) is computed; everywhere else SSIM is exactly 1 and the error 0. That keeps the readout
live on large images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.geometry import Rect

SIGMA = 1.5
RADIUS = 5  # skimage: truncate 3.5 * sigma -> window 11
K1, K2, DATA_RANGE = 0.01, 0.03, 255.0


@dataclass(frozen=True)
class Quality:
    """``psnr_db`` is ``inf`` for identical images; ``ssim`` is in [-1, 1], 1 = identical."""

    psnr_db: float
    ssim: float
    changed: Rect


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        return a[:, :, None]
    return a[:, :, :3]


def changed_region(a: np.ndarray, b: np.ndarray) -> Rect:
    diff = np.any(_rgb(a) != _rgb(b), axis=2)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return Rect(0, 0, 0, 0)
    cols = np.flatnonzero(diff[rows[0] : rows[-1] + 1].any(axis=0))
    return Rect.from_edges(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def psnr(a: np.ndarray, b: np.ndarray, region: Rect | None = None) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and colour channels (inf if equal)."""
    _check(a, b)
    h, w = a.shape[:2]
    region = changed_region(a, b) if region is None else region
    if region.is_empty():
        return math.inf
    d = _rgb(a)[region.slices].astype(np.float64) - _rgb(b)[region.slices]
    mse = float(np.sum(d * d)) / (h * w * _rgb(a).shape[2])
    return 10.0 * math.log10(DATA_RANGE**2 / mse) if mse > 0 else math.inf


def _gauss_kernel() -> np.ndarray:
    x = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2 * SIGMA * SIGMA))
    return k / k.sum()


def _filter(img: np.ndarray) -> np.ndarray:
    """Separable Gaussian with reflect padding (scipy's 'reflect': edge sample repeated)."""
    k = _gauss_kernel()
    p = np.pad(img, ((RADIUS, RADIUS), (0, 0)), mode="symmetric")
    out = sum(k[i] * p[i : i + img.shape[0]] for i in range(k.size))
    p = np.pad(out, ((0, 0), (RADIUS, RADIUS)), mode="symmetric")
    return sum(k[i] * p[:, i : i + img.shape[1]] for i in range(k.size))


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    ux, uy = _filter(x), _filter(y)
    vx = _filter(x * x) - ux * ux
    vy = _filter(y * y) - uy * uy
    vxy = _filter(x * y) - ux * uy
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def ssim(a: np.ndarray, b: np.ndarray, region: Rect | None = None) -> float:
    """Mean structural similarity over colour channels (see the module docstring)."""
    _check(a, b)
    h, w = a.shape[:2]
    if h <= 2 * RADIUS or w <= 2 * RADIUS:
        raise ValueError(f"SSIM needs images larger than {2 * RADIUS + 1} px on each side")
    region = changed_region(a, b) if region is None else region
    if region.is_empty():
        return 1.0
    bounds = Rect(0, 0, w, h)
    affected = region.grow(RADIUS).intersect(bounds)  # where S can differ from 1
    crop = affected.grow(2 * RADIUS + 1).intersect(bounds)
    valid = Rect(RADIUS, RADIUS, w - 2 * RADIUS, h - 2 * RADIUS)  # skimage crops the border
    counted = affected.intersect(valid)
    ca, cb = _rgb(a)[crop.slices], _rgb(b)[crop.slices]
    total = 0.0
    for c in range(ca.shape[2]):
        s = _ssim_map(ca[:, :, c].astype(np.float64), cb[:, :, c].astype(np.float64))
        local = counted.translate(-crop.x, -crop.y)
        total += float(s[local.slices].sum()) + (valid.area - counted.area)
    return total / (ca.shape[2] * valid.area)


def quality(current: np.ndarray, original: np.ndarray) -> Quality:
    """PSNR and SSIM of ``current`` against ``original`` (same size)."""
    region = changed_region(current, original)
    return Quality(psnr(current, original, region), ssim(current, original, region), region)


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(
            f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}"
        )
