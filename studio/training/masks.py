"""Seeded random free-form hole masks for inpainting training and evaluation.

The mask families follow the published recipes of DeepFill v2 (free-form brush strokes: random
walks of thick line segments with round joints) and LaMa (thick/medium strokes plus boxes), with
smooth random blobs added (object-shaped holes). Sizes scale with the image's short side, so a
mask drawn at 128 px looks like one drawn at 256 px, scaled.

Contract: every function returns float32 ``HxW`` with values in {0, 1}, 1 = hole (to fill), and
is a pure function of its arguments (all randomness comes from the given seed / generator).

* :func:`random_mask` (training): coverage uniformly drawn in ``[lo, hi]`` (default 5%..50%) and
  always inside that range;
* :func:`eval_mask` (evaluation): strokes and blobs, coverage within ``target +- tol``
  (default 15% +- 2%), reproducible from ``seed``;
* :func:`object_mask` (evaluation of object removal): one connected blob of 20%..35%.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

KINDS = ("stroke", "blob", "box")
#: training mix of shape kinds (strokes dominate, as in DeepFill v2 / LaMa)
TRAIN_KIND_P = (0.6, 0.25, 0.15)
EVAL_KIND_P = (0.7, 0.3, 0.0)


def coverage(mask: np.ndarray) -> float:
    """Fraction of hole pixels."""
    return float(mask.mean())


def _stroke(h: int, w: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A random walk of 3..9 segments, width varying along the walk, round joints."""
    m = np.zeros((h, w), np.uint8)
    x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
    angle = rng.uniform(0, 2 * math.pi)
    width = rng.uniform(0.04, 0.14) * scale
    for _ in range(int(rng.integers(3, 10))):
        angle += rng.uniform(-0.6 * math.pi, 0.6 * math.pi)
        length = rng.uniform(0.08, 0.3) * scale
        nx = float(np.clip(x + length * math.cos(angle), 0, w - 1))
        ny = float(np.clip(y + length * math.sin(angle), 0, h - 1))
        width = float(np.clip(width * rng.uniform(0.7, 1.4), 0.025 * scale, 0.18 * scale))
        t = max(2, round(width))
        cv2.line(m, (round(x), round(y)), (round(nx), round(ny)), 1, t, cv2.LINE_8)
        cv2.circle(m, (round(nx), round(ny)), t // 2, 1, -1, cv2.LINE_8)
        x, y = nx, ny
    return m


def _blob(h: int, w: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A smooth irregular shape: a random star polygon, blurred and thresholded."""
    m = np.zeros((h, w), np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = rng.uniform(0.06, 0.22) * scale
    n = int(rng.integers(6, 14))
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    rad = r * rng.uniform(0.5, 1.3, n)
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).round().astype(np.int32)
    cv2.fillPoly(m, [pts], 1.0)
    k = max(3, int(r * 0.6) | 1)
    m = cv2.GaussianBlur(m, (k, k), 0)
    return (m > 0.5).astype(np.uint8)


def _box(h: int, w: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """An axis-aligned rectangle, 8%..40% of the short side on each side."""
    m = np.zeros((h, w), np.uint8)
    bw, bh = (rng.uniform(0.08, 0.4, 2) * scale).round().astype(int)
    x0 = int(rng.integers(0, max(1, w - bw + 1)))
    y0 = int(rng.integers(0, max(1, h - bh + 1)))
    m[y0 : y0 + bh, x0 : x0 + bw] = 1
    return m


_DRAW = {"stroke": _stroke, "blob": _blob, "box": _box}


def _grow(
    h: int,
    w: int,
    rng: np.random.Generator,
    target: float,
    lo: float,
    hi: float,
    kind_p: tuple[float, ...],
    max_tries: int = 400,
) -> np.ndarray:
    """Add shapes until coverage reaches ``target``; a shape that overshoots ``hi`` is dropped.

    Shapes shrink as failures accumulate, so the loop ends; if it still falls short of ``lo``
    (tiny images), square dabs are added one by one until it does not.
    """
    area = float(h * w)
    mask = np.zeros((h, w), np.uint8)
    scale = float(min(h, w))
    p = np.asarray(kind_p, np.float64) / sum(kind_p)
    filled = 0.0
    shrink = 1.0
    for _ in range(max_tries):
        if filled >= target:
            break
        kind = KINDS[int(rng.choice(len(KINDS), p=p))]
        new = np.maximum(mask, _DRAW[kind](h, w, rng, scale * shrink))
        cov = float(new.sum()) / area
        if cov > hi:
            shrink = max(0.2, shrink * 0.85)
            continue
        mask, filled = new, cov
    side = max(1, round(0.02 * scale))
    while mask.sum() / area < lo:
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        mask[y : y + side, x : x + side] = 1
    return mask


def random_mask(
    h: int,
    w: int,
    rng: np.random.Generator,
    lo: float = 0.05,
    hi: float = 0.5,
    kind_p: tuple[float, float, float] = TRAIN_KIND_P,
) -> np.ndarray:
    """Training mask: float32 HxW in {0, 1}; coverage drawn uniformly in [lo, hi], kept in it."""
    if not 0.0 <= lo <= hi < 1.0:
        raise ValueError(f"need 0 <= lo <= hi < 1, got {lo}, {hi}")
    target = float(rng.uniform(lo, hi))
    return _grow(h, w, rng, target, lo, hi, kind_p).astype(np.float32)


def eval_mask(h: int, w: int, seed: int, target: float = 0.15, tol: float = 0.02) -> np.ndarray:
    """Evaluation mask: strokes and blobs, coverage in ``[target - tol, target + tol]``.

    Deterministic in ``(h, w, seed, target, tol)``.
    """
    rng = np.random.default_rng([seed, h, w, 0x5EED])
    # growth stops at the first shape past ``stop``; shapes add ~1-2%, so this centres on target
    stop = target - tol / 2
    return _grow(h, w, rng, stop, target - tol, target + tol, EVAL_KIND_P).astype(np.float32)


def object_mask(h: int, w: int, seed: int, lo: float = 0.20, hi: float = 0.35) -> np.ndarray:
    """Object-removal mask: ONE connected irregular blob covering ``lo``..``hi`` of the image.

    The shape of a painted-over object (a sheep in a field): a smooth random star polygon whose
    radius is scaled until its coverage lands on a target drawn uniformly in ``[lo, hi]``
    (always inside that range). Deterministic in ``(h, w, seed, lo, hi)``.
    """
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"need 0 < lo <= hi < 1, got {lo}, {hi}")
    rng = np.random.default_rng([seed, h, w, 0x0B1E])
    target = float(rng.uniform(lo, hi))
    n = int(rng.integers(7, 13))
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    shape = rng.uniform(0.55, 1.25, n)
    centre = (rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h)

    def draw(radius: float) -> np.ndarray:
        m = np.zeros((h, w), np.float32)
        xs, ys = centre[0] + radius * shape * np.cos(ang), centre[1] + radius * shape * np.sin(ang)
        cv2.fillPoly(m, [np.stack([xs, ys], 1).round().astype(np.int32)], 1.0)
        k = max(3, int(radius * 0.5) | 1)
        return (cv2.GaussianBlur(m, (k, k), 0) > 0.5).astype(np.uint8)

    low, high = 1.0, float(max(h, w))  # bisect the radius (coverage grows with it)
    mask = draw(low)
    for _ in range(40):
        mid = 0.5 * (low + high)
        mask = draw(mid)
        cov = float(mask.mean())
        if lo <= cov <= hi and abs(cov - target) < 0.01:
            break
        low, high = (mid, high) if cov < target else (low, mid)
    # keep the largest piece only (blurring a thin star arm can split it off)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count > 2:
        mask = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    if not mask.any():  # every radius tried vanished under the blur: a disc of the target size
        r = max(1, round(math.sqrt(target * h * w / math.pi)))
        cv2.circle(mask, (round(centre[0]), round(centre[1])), r, 1, -1)
    while mask.mean() < lo:  # tiny images: grow the blob by its border
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return mask.astype(np.float32)


def random_masks(
    n: int, h: int, w: int, rng: np.random.Generator, lo: float = 0.05, hi: float = 0.5
) -> np.ndarray:
    """A stack of ``n`` training masks, float32 (n, h, w)."""
    return np.stack([random_mask(h, w, rng, lo, hi) for _ in range(n)])
