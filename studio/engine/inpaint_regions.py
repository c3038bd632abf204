"""Mask geometry for inpainting: grow, feather, split into regions, crop, colour-match.

All functions work on float32 masks HxW in [0, 1] (1 = fill) and RGB float32 HxWx3 images.
The blend weight ``alpha`` is exactly zero outside the grown-and-feathered mask, which is what
guarantees that pixels there come back bit-identical.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from studio.geometry import Rect


def grow_and_feather(mask: np.ndarray, grow: int, feather: int) -> np.ndarray:
    """Blend weight: 1 on the mask grown by ``grow`` px, falling to 0 over ``feather`` px outside.

    ``grow`` may be negative (shrink). The mask is binarised at 0.5 first. The work is done
    inside the mask's bounding box grown by the reach of ``grow`` and ``feather`` (on a big
    image with a small mask that is most of the saving); everything outside it is 0.
    """
    hole = (mask >= 0.5).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(hole)
    alpha = np.zeros(mask.shape, np.float32)
    if w == 0 or h == 0:
        return alpha
    reach = max(grow, 0) + max(feather, 0) + 2
    box = Rect(x, y, w, h).grow(reach).intersect(Rect(0, 0, mask.shape[1], mask.shape[0]))
    alpha[box.slices] = _grow_and_feather_all(hole[box.slices], grow, feather)
    return alpha


def _grow_and_feather_all(hole: np.ndarray, grow: int, feather: int) -> np.ndarray:
    if grow:
        size = 2 * abs(grow) + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        hole = cv2.dilate(hole, kernel) if grow > 0 else cv2.erode(hole, kernel)
    alpha = hole.astype(np.float32)
    if feather > 0 and hole.any():
        # distance (px) from each outside pixel to the nearest hole pixel
        dist = cv2.distanceTransform(1 - hole, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        alpha = np.clip(1.0 - dist / float(feather + 1), 0.0, 1.0).astype(np.float32)
    return alpha


@dataclass(frozen=True)
class Region:
    """An area to fill: ``hole_box`` bounds its hole pixels, ``context`` is what the method sees."""

    hole_box: Rect
    context: Rect


def plan_regions(alpha: np.ndarray, padding: int, min_pad_ratio: float = 0.5) -> list[Region]:
    """Connected hole areas with their context boxes; areas whose contexts overlap are merged.

    The context is the hole's bounding box grown by ``max(padding, min_pad_ratio * its size)``,
    so a small hole still sees enough surroundings. Regions are ordered top-to-bottom,
    left-to-right.
    """
    hole = (alpha > 0).astype(np.uint8)
    h, w = hole.shape
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(hole, connectivity=8)
    boxes = [Rect(int(s[0]), int(s[1]), int(s[2]), int(s[3])) for s in stats[1:count]]
    bounds = Rect(0, 0, w, h)

    def context_of(box: Rect) -> Rect:
        pad = max(padding, int(min_pad_ratio * max(box.w, box.h)))
        return box.grow(pad).intersect(bounds)

    regions = [Region(b, context_of(b)) for b in boxes]
    merged = True
    while merged:  # merge until no two contexts overlap
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                if not regions[i].context.intersect(regions[j].context).is_empty():
                    box = regions[i].hole_box.union(regions[j].hole_box)
                    regions[i] = Region(
                        box, context_of(box).union(regions[i].context).union(regions[j].context)
                    )
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(regions, key=lambda r: (r.hole_box.y, r.hole_box.x))


def working_scale(context: Rect, max_side: int) -> float:
    """Factor (<= 1) that brings the context's long side within ``max_side`` (0: no limit)."""
    if max_side <= 0:
        return 1.0
    return min(1.0, max_side / max(context.w, context.h))


def _normalised_blur(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian average of ``values`` counting only where ``weights`` > 0.

    Wide blurs run on a copy shrunk so that sigma is ~4 px there: the result is smooth anyway,
    and a direct kernel hundreds of pixels wide would take seconds on a large region.
    """
    factor = int(sigma // 4)
    if factor >= 2:
        h, w = weights.shape
        small = (max(1, w // factor), max(1, h // factor))
        v = cv2.resize(
            values * (weights[:, :, None] if values.ndim == 3 else weights),
            small,
            interpolation=cv2.INTER_AREA,
        )
        wt = cv2.resize(weights.astype(np.float32), small, interpolation=cv2.INTER_AREA)
        s = sigma / factor
        k = int(s * 3) * 2 + 1
        v = cv2.GaussianBlur(v, (k, k), s)
        wt = cv2.GaussianBlur(wt, (k, k), s)
        v = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
        wt = cv2.resize(wt, (w, h), interpolation=cv2.INTER_LINEAR)
        if values.ndim == 3:
            return v / np.maximum(wt, 1e-6)[:, :, None]
        return v / np.maximum(wt, 1e-6)
    k = int(sigma * 3) * 2 + 1
    w = cv2.GaussianBlur(weights.astype(np.float32), (k, k), sigma)
    if values.ndim == 3:
        v = cv2.GaussianBlur(values * weights[:, :, None], (k, k), sigma)
        return v / np.maximum(w, 1e-6)[:, :, None]
    v = cv2.GaussianBlur(values * weights, (k, k), sigma)
    return v / np.maximum(w, 1e-6)


def color_match(
    fill: np.ndarray, original: np.ndarray, hole: np.ndarray, ring: int = 3
) -> np.ndarray:
    """Remove a low-frequency colour shift between a fill and its surroundings.

    Compares the fill just inside the hole with the known pixels just outside it (both lightly
    blurred), and spreads that difference smoothly over the hole. A fill that continues its
    border (as diffusion methods do) is left unchanged; a fill that came back a shade too warm
    or too dark is pulled onto its surroundings, so no halo shows at the edge.
    """
    hole_u8 = (hole > 0).astype(np.uint8)
    if not hole_u8.any() or hole_u8.all():
        return fill
    kernel = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    inner = (hole_u8 - cv2.erode(hole_u8, kernel)).astype(np.float32)
    known = 1.0 - hole_u8.astype(np.float32)
    outside_near = _normalised_blur(original, known, 1.0)
    inside_near = _normalised_blur(fill, hole_u8.astype(np.float32), 1.0)
    diff = (outside_near - inside_near) * inner[:, :, None]
    ys, xs = np.nonzero(hole_u8)
    sigma = max(4.0, 0.25 * max(np.ptp(ys) + 1, np.ptp(xs) + 1))
    offset = _normalised_blur(diff, inner, sigma)
    out = fill.copy()
    out[hole_u8 > 0] += offset[hole_u8 > 0]
    return np.clip(out, 0.0, 1.0)


def outpaint_tiles(alpha: np.ndarray, original: Rect, tile: int) -> list[Rect]:
    """Tiles of at most ``tile`` px covering the blend weight ``alpha`` > 0 of an outpaint, in
    fill order: nearest to the original first, then outward.

    Outpainting a long side in one piece would downscale the whole strip to the method's
    comfortable size (a 4000 px side comes back at a quarter of its resolution). Filled tile
    by tile, each at full resolution, every tile sees the original and the tiles filled before
    it as context, so the strip continues without seams. Each side's strip (with the feathered
    seam inside the original) is cut along its length; the top and bottom strips take the
    corners.
    """
    height, width = alpha.shape
    weighted = alpha > 0
    inside = weighted[original.slices]

    def reach(line: np.ndarray) -> int:
        """How far the feathered seam reaches into the original along ``line`` (from its start)."""
        stop = np.flatnonzero(~line)
        return int(stop[0]) if stop.size else len(line)

    # measured through the middle of each edge, away from the other sides' seams
    mid_row, mid_col = inside[inside.shape[0] // 2], inside[:, inside.shape[1] // 2]
    top_in, bottom_in = reach(mid_col), reach(mid_col[::-1])
    left_in, right_in = reach(mid_row), reach(mid_row[::-1])
    top, bottom = original.y + top_in, original.bottom - bottom_in
    strips = [
        Rect(0, 0, width, top),
        Rect(0, bottom, width, height - bottom),
        Rect(0, top, original.x + left_in, bottom - top),
        Rect(original.right - right_in, top, width - original.right + right_in, bottom - top),
    ]
    tiles = []
    for strip in strips:
        if strip.is_empty():
            continue
        ny, nx = -(-strip.h // tile), -(-strip.w // tile)
        ys = np.linspace(strip.y, strip.bottom, ny + 1).round().astype(int)
        xs = np.linspace(strip.x, strip.right, nx + 1).round().astype(int)
        for y0, y1 in itertools.pairwise(ys):
            for x0, x1 in itertools.pairwise(xs):
                t = Rect(int(x0), int(y0), int(x1 - x0), int(y1 - y0))
                if weighted[t.slices].any():
                    tiles.append(t)

    def distance(t: Rect) -> float:
        """From the tile's centre to the original (so corners come after edges)."""
        cx, cy = t.x + t.w / 2, t.y + t.h / 2
        dx = max(original.x - cx, cx - original.right, 0.0)
        dy = max(original.y - cy, cy - original.bottom, 0.0)
        return float(np.hypot(dx, dy))

    return sorted(tiles, key=lambda t: (distance(t), t.y, t.x))
