"""Selections computed from the picture: an object inside a box (GrabCut) and a colour range.

Both return a float32 HxW coverage in [0, 1] (1 = selected) the size of the image;
:func:`apply_selection` combines one with the document's mask by a :class:`Mode` as one undo
step. Images are RGB(A) uint8 HxWxC; only the RGB channels are read.

OpenCV is imported only when needed, as in :mod:`studio.document.mask_ops`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from studio.document.document import Document
from studio.document.history import Step
from studio.document.shapes import Mode, combine
from studio.geometry import Rect

#: values of a hints array (uint8 HxW): what a refine stroke says about a pixel
HINT_NONE, HINT_FOREGROUND, HINT_BACKGROUND = 0, 1, 2
#: GrabCut runs on a copy whose long side is at most this (its cost grows with the area)
WORK_SIDE = 512
#: islands of the object (and holes in it) smaller than this fraction of its largest part are
#: GrabCut noise
MIN_ISLAND = 0.01


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB(A) uint8 HxWxC image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def _nonzero_bbox(a: np.ndarray) -> Rect:
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    if rows.size == 0:
        return Rect(0, 0, 0, 0)
    return Rect.from_edges(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def paint_hint(
    hints: np.ndarray, points: Sequence[tuple[float, float]], radius: float, value: int
) -> Rect:
    """Draw a refine stroke (a polyline of round dabs) into ``hints``; returns the box it
    touched. ``value`` is :data:`HINT_FOREGROUND`, :data:`HINT_BACKGROUND` or :data:`HINT_NONE`.
    """
    import cv2

    if not points:
        return Rect(0, 0, 0, 0)
    r = max(1, round(radius))
    pts = np.round(np.asarray(points, np.float64)).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) == 1:
        cv2.circle(hints, tuple(int(v) for v in pts[0, 0]), r, int(value), -1)
    else:
        cv2.polylines(hints, [pts], False, int(value), 2 * r + 1, cv2.LINE_8)
    xs, ys = pts[:, 0, 0], pts[:, 0, 1]
    x0, y0, x1, y1 = (
        int(xs.min()) - r,
        int(ys.min()) - r,
        int(xs.max()) + r + 1,
        int(ys.max()) + r + 1,
    )
    box = Rect.from_edges(x0, y0, x1, y1)
    return box.intersect(Rect(0, 0, hints.shape[1], hints.shape[0]))


# -- object select ------------------------------------------------------------------------------


def object_mask(
    image: np.ndarray,
    box: Rect | tuple[int, int, int, int],
    hints: np.ndarray | None = None,
    iterations: int = 5,
    work_side: int = WORK_SIDE,
) -> np.ndarray:
    """The object inside ``box`` separated from its background by GrabCut.

    ``box`` (x, y, w, h) is assumed to hold the whole object; pixels outside it are background.
    ``hints`` (uint8 HxW, optional) are refine strokes: :data:`HINT_FOREGROUND` pixels are
    certainly the object (even outside the box), :data:`HINT_BACKGROUND` certainly not. A box
    (with a margin of background around it) whose long side exceeds ``work_side`` is solved
    on a downscaled copy; the result is upsampled and snapped to the full image's edges by a
    guided filter. Returns float32 HxW in [0, 1], 1 = the object.
    """
    import cv2

    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    bounds = Rect(0, 0, w, h)
    box = (box if isinstance(box, Rect) else Rect(*(int(v) for v in box))).intersect(bounds)
    out = np.zeros((h, w), np.float32)
    if box.w < 2 or box.h < 2:
        return out
    if hints is not None and hints.shape != (h, w):
        raise ValueError(f"hints are {hints.shape}, the image is {(h, w)}")
    has_hints = hints is not None and bool(hints.any())
    region = box
    if has_hints:
        region = region.union(_nonzero_bbox(hints == HINT_FOREGROUND))
    margin = max(8, round(0.1 * max(region.w, region.h)))
    crop = region.grow(margin).intersect(bounds)
    scale = min(1.0, work_side / max(crop.w, crop.h))
    sw, sh = max(1, round(crop.w * scale)), max(1, round(crop.h * scale))
    small = rgb[crop.slices]
    if scale < 1.0:
        small = cv2.resize(small, (sw, sh), interpolation=cv2.INTER_AREA)
    gc = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    # a foreground stroke outside the box widens it: the object may grow to reach the stroke
    inner = _scaled(region.translate(-crop.x, -crop.y), scale, sw, sh)
    gc[inner.slices] = cv2.GC_PR_FGD
    if not (gc == cv2.GC_BGD).any():  # the box is the whole picture: its rim is the background
        gc[[0, -1], :] = cv2.GC_BGD
        gc[:, [0, -1]] = cv2.GC_BGD
    if has_hints:
        local = hints[crop.slices]
        for value, label in ((HINT_FOREGROUND, cv2.GC_FGD), (HINT_BACKGROUND, cv2.GC_BGD)):
            gc[_shrink_bool(local == value, sw, sh)] = label
    if (gc == cv2.GC_PR_FGD).sum() + (gc == cv2.GC_FGD).sum() < 16:
        return out  # too small to learn a colour model from
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(small, gc, None, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_MASK)
    found = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    found = _drop_islands(found)
    if scale < 1.0:
        size = (crop.w, crop.h)
        soft = cv2.resize(found.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        found = _snap_to_edges(soft, rgb[crop.slices], radius=math.ceil(1 / scale))
    local_out = out[crop.slices]
    local_out[:] = found
    if has_hints:
        local = hints[crop.slices]
        local_out[local == HINT_FOREGROUND] = 1.0
        local_out[local == HINT_BACKGROUND] = 0.0
    keep = np.zeros((h, w), bool)
    keep[region.slices] = True
    out[~keep] = 0.0
    return out


def _scaled(rect: Rect, scale: float, w: int, h: int) -> Rect:
    """``rect`` in the coordinates of a copy scaled by ``scale``, at least 1 px, clipped."""
    x0, y0 = math.floor(rect.x * scale), math.floor(rect.y * scale)
    x1 = max(x0 + 1, math.ceil(rect.right * scale))
    y1 = max(y0 + 1, math.ceil(rect.bottom * scale))
    return Rect.from_edges(x0, y0, x1, y1).intersect(Rect(0, 0, w, h))


def _shrink_bool(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """Downscale a boolean map so that any covered pixel marks its small pixel (thin strokes
    survive)."""
    import cv2

    if a.shape == (h, w):
        return a
    return cv2.resize(a.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_AREA) > 0


def _drop_islands(found: np.ndarray) -> np.ndarray:
    """Remove parts much smaller than the largest and fill holes as small: speckles where
    background and object colours match."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(found, connectivity=8)
    if n <= 1:
        return found
    areas = stats[1:, cv2.CC_STAT_AREA]
    small = MIN_ISLAND * areas.max()
    if n > 2:
        found = np.concatenate([[False], areas >= small])[labels].astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - found, connectivity=4)
    h, w = found.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    inside = (x > 0) & (y > 0)
    inside &= (x + stats[:, cv2.CC_STAT_WIDTH] < w) & (y + stats[:, cv2.CC_STAT_HEIGHT] < h)
    hole = inside & (stats[:, cv2.CC_STAT_AREA] < small)
    hole[0] = False  # label 0 is the object itself
    return np.where(hole[labels], np.uint8(1), found)


def _snap_to_edges(soft: np.ndarray, rgb: np.ndarray, radius: int) -> np.ndarray:
    """Move an upsampled (blurry) mask edge onto the picture's edges: a guided filter (He et
    al. 2010) with the luminance as guide, then a steep ramp back to a crisp, antialiased edge.
    """
    import cv2

    guide = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)
    r = max(1, 2 * radius)
    size = (2 * r + 1, 2 * r + 1)

    def mean(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = mean(guide), mean(soft)
    cov = mean(guide * soft) - mean_i * mean_p
    var = mean(guide * guide) - mean_i * mean_i
    a = cov / (var + np.float32(1e-3))
    b = mean_p - a * mean_i
    q = mean(a) * guide + mean(b)
    # the filtered edge spans ~2r px; a gain of r brings it back to ~2 px
    return np.clip((q - 0.5) * np.float32(r) + 0.5, 0.0, 1.0).astype(np.float32)


# -- colour range ("magic wand") ------------------------------------------------------------------


def lab_image(image: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of an RGB(A) uint8 image: float32 HxWx3, L in [0, 100]."""
    import cv2

    return cv2.cvtColor(_rgb(image).astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)


def color_range_mask(
    image: np.ndarray,
    seed_xy: tuple[int, int],
    tolerance: float,
    contiguous: bool = True,
    lab: np.ndarray | None = None,
) -> np.ndarray:
    """Pixels whose colour is within ``tolerance`` of the seed pixel's (the magic wand).

    ``tolerance`` (0-100) is the largest CIE76 colour difference (Euclidean distance in
    L*a*b*) still selected: 0 = exactly the seed's colour, ~2 = just noticeable, 100 = black
    against white. ``contiguous``: only the 4-connected area around the seed; otherwise every
    such pixel of the image ("select similar"). ``lab`` may pass :func:`lab_image` of the
    image, computed once for many clicks. Returns float32 HxW of 0 and 1.
    """
    import cv2

    h, w = image.shape[:2]
    x, y = int(seed_xy[0]), int(seed_xy[1])
    if not (0 <= x < w and 0 <= y < h):
        return np.zeros((h, w), np.float32)
    if lab is None:
        lab = lab_image(image)
    tol = float(np.clip(tolerance, 0.0, 100.0))
    diff = lab - lab[y, x]
    dist2 = np.einsum("ijk,ijk->ij", diff, diff)
    within = (dist2 <= tol * tol + 1e-6).astype(np.uint8)
    if contiguous:
        filled = np.zeros((h + 2, w + 2), np.uint8)
        flags = 4 | (1 << 8) | cv2.FLOODFILL_MASK_ONLY
        cv2.floodFill(within, filled, (x, y), 1, 0, 0, flags)
        within = filled[1:-1, 1:-1]
    return within.astype(np.float32)


# -- one undo step --------------------------------------------------------------------------------


def apply_selection(doc: Document, cover: np.ndarray, mode: Mode | str, name: str) -> Step | None:
    """Combine a full-size coverage with the document's mask as one undo step (None when the
    mask does not change); the step keeps only the box that changed."""
    if cover.shape != doc.mask.shape:
        raise ValueError(f"selection is {cover.shape}, the mask is {doc.mask.shape}")
    return doc.set_mask(combine(doc.mask, cover.astype(np.float32, copy=False), Mode(mode)), name)


def outline_polygons(cover: np.ndarray, threshold: float = 0.5) -> list[np.ndarray]:
    """The boundaries of ``cover >= threshold`` as closed polygons (Nx2 float arrays in pixel
    edge coordinates), for drawing a selection outline."""
    import cv2

    binary = (cover >= threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    # contours run through pixel indices; +0.5 puts them on the pixels' centres
    return [c.reshape(-1, 2).astype(np.float64) + 0.5 for c in contours if len(c) >= 2]
