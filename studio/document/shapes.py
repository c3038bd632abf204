"""Selection shapes rasterised into the mask: rectangle, ellipse, lasso and polygon.

Every shape is a closed polygon in image pixel coordinates (pixel (i, j) spans [i, i+1) x
[j, j+1)). Coverage is antialiased: exact along rows (each edge crossing contributes its
fractional overlap) and 4 sub-rows per pixel row vertically; the nonzero winding rule decides
inside. A shape combines with the mask by a :class:`Mode`; applying one is one undo step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from studio.document.commands import MASK
from studio.document.document import Document, changed_bbox
from studio.document.history import Step
from studio.geometry import Rect

SUBROWS = 4
Point = tuple[float, float]


class Mode(StrEnum):
    """How a shape combines with the mask (Photoshop/Krita: Shift adds, Alt subtracts)."""

    REPLACE = "replace"
    ADD = "add"
    SUBTRACT = "subtract"
    INTERSECT = "intersect"


def rectangle(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    """The rectangle between two corners (in any order) as a polygon."""
    xa, xb = sorted((x0, x1))
    ya, yb = sorted((y0, y1))
    return [(xa, ya), (xb, ya), (xb, yb), (xa, yb)]


def ellipse(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    """The ellipse inscribed in the rectangle between two corners, as a fine polygon."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx, ry = abs(x1 - x0) / 2, abs(y1 - y0) / 2
    n = int(min(4096, max(32, 2 * math.pi * max(rx, ry))))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return list(zip((cx + rx * np.cos(t)).tolist(), (cy + ry * np.sin(t)).tolist(), strict=True))


def bounds_of(points: Sequence[Point]) -> Rect:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return Rect.from_edges(
        math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))
    )


def polygon_coverage(points: Sequence[Point], clip: Rect) -> tuple[Rect, np.ndarray]:
    """Antialiased coverage of a closed polygon: (box, float32 array of box's shape in [0, 1]).

    ``box`` is the polygon's bounding box clipped to ``clip`` (maybe empty).
    """
    box = bounds_of(points).intersect(clip) if len(points) >= 3 else Rect(0, 0, 0, 0)
    if box.is_empty():
        return box, np.zeros((0, 0), np.float32)
    p = np.asarray(points, np.float64)
    x0, y0 = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    winding = np.where(y1 > y0, 1.0, -1.0)
    # sub-row j samples y = box.y + (j + 0.5) / SUBROWS; an edge crosses it if lo <= y < hi
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    j_first = np.ceil((lo - box.y) * SUBROWS - 0.5).astype(np.int64)
    j_end = np.ceil((hi - box.y) * SUBROWS - 0.5).astype(np.int64)
    rows = box.h * SUBROWS
    j_first, j_end = np.clip(j_first, 0, rows), np.clip(j_end, 0, rows)
    counts = np.maximum(j_end - j_first, 0)
    edge = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    j = j_first[edge] + (np.arange(edge.size) - starts[edge])
    y = box.y + (j + 0.5) / SUBROWS
    x = x0[edge] + (y - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    x = np.clip(x - box.x, 0.0, float(box.w))
    col = np.floor(x).astype(np.int64)
    frac = x - col
    d = winding[edge]
    return box, _accumulate(j, col, frac, d, box)


def _accumulate(
    j: np.ndarray, col: np.ndarray, frac: np.ndarray, d: np.ndarray, box: Rect
) -> np.ndarray:
    """Sum crossings row by row into winding coverage, in bands to bound memory."""
    out = np.zeros((box.h, box.w), np.float32)
    width = box.w + 2
    order = np.argsort(j, kind="stable")
    j, col, frac, d = j[order], col[order], frac[order], d[order]
    band = max(1, (1 << 20) // (width * SUBROWS))  # pixel rows per band
    for r0 in range(0, box.h, band):
        r1 = min(box.h, r0 + band)
        a, b = np.searchsorted(j, [r0 * SUBROWS, r1 * SUBROWS])
        if a == b:
            continue
        sub = (r1 - r0) * SUBROWS
        flat = (j[a:b] - r0 * SUBROWS) * width + col[a:b]
        acc = np.bincount(flat, d[a:b] * (1.0 - frac[a:b]), sub * width)
        acc += np.bincount(flat + 1, d[a:b] * frac[a:b], sub * width)
        cover = np.abs(np.cumsum(acc.reshape(sub, width), axis=1)[:, : box.w])
        np.minimum(cover, 1.0, out=cover)
        out[r0:r1] = cover.reshape(r1 - r0, SUBROWS, box.w).mean(axis=1)
    return out


def combine(old: np.ndarray, cover: np.ndarray, mode: Mode) -> np.ndarray:
    """The mask values after combining ``cover`` with ``old`` (same shape, float32)."""
    if mode == Mode.ADD:
        return np.maximum(old, cover)
    if mode == Mode.SUBTRACT:
        return old * (np.float32(1.0) - cover)
    if mode == Mode.INTERSECT:
        return np.minimum(old, cover)
    return cover.astype(np.float32, copy=True)


STEP_NAMES = {
    Mode.REPLACE: "Select {}",
    Mode.ADD: "Add {} to mask",
    Mode.SUBTRACT: "Subtract {} from mask",
    Mode.INTERSECT: "Intersect mask with {}",
}


def apply_shape(
    doc: Document, points: Sequence[Point], mode: Mode | str, shape_name: str = "shape"
) -> Step | None:
    """Combine a polygon with the document's mask as one undo step (None if nothing changed)."""
    mode = Mode(mode)
    box, cover = polygon_coverage(points, doc.bounds)
    name = STEP_NAMES[mode].format(shape_name)
    if mode in (Mode.ADD, Mode.SUBTRACT):
        if box.is_empty():
            return None
        old = doc.mask[box.slices]
        new = combine(old, cover, mode)
        if np.array_equal(old, new):
            return None
        return doc.apply_pixels(MASK, box, new, name)
    # replace and intersect also clear the mask outside the shape: work on the box holding
    # both the old mask and the shape (never a full-size copy of a big mask)
    region = changed_bbox(doc.mask, np.float32(0)).union(box)
    if region.is_empty():
        return None
    new = np.zeros((region.h, region.w), np.float32)
    if not box.is_empty():
        inner = box.translate(-region.x, -region.y)
        new[inner.slices] = combine(doc.mask[box.slices], cover, mode)
    old = doc.mask[region.slices]
    changed = changed_bbox(old, new)
    if changed.is_empty():
        return None
    return doc.apply_pixels(MASK, changed.translate(region.x, region.y), new[changed.slices], name)
