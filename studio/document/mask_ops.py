"""Mask operations: grow, shrink, feather, fill enclosed areas, import/export conversions.

Masks are float32 HxW in [0, 1], 1 = edit. Every operation treats the mask as continuing
outside the image with its edge value, so a full mask stays full after shrinking or
feathering (the image border neither erodes nor fades). Each function returns a new array;
:func:`apply` records the result as one undo step holding only the bounding box that changed.

Work is restricted to the area that can change (around the mask's edges), so an operation on a
small selection in a huge image costs little.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from studio.document.document import Document, changed_bbox
from studio.document.history import Step
from studio.geometry import Rect

# -- region plumbing -------------------------------------------------------------------------


def _edge_bbox(mask: np.ndarray) -> Rect:
    """Bounding box of pixels that differ from a 4-neighbour (where the mask is not flat)."""
    h, w = mask.shape
    out = Rect(0, 0, 0, 0)
    if w > 1:
        box = changed_bbox(mask[:, 1:], mask[:, :-1])
        out = out.union(Rect(box.x, box.y, box.w + 1, box.h) if not box.is_empty() else box)
    if h > 1:
        box = changed_bbox(mask[1:], mask[:-1])
        out = out.union(Rect(box.x, box.y, box.w, box.h + 1) if not box.is_empty() else box)
    return out


#: _run_local works in tiles of this side and skips tiles whose neighbourhood is flat
_TILE = 128


def _run_local(
    mask: np.ndarray, active: Rect, margin: int, fn: Callable[[np.ndarray, int], np.ndarray]
) -> np.ndarray:
    """Apply ``fn`` to the pixels within ``margin`` of ``active``; the rest is copied.

    ``fn(padded, margin)`` receives a tile grown by ``margin`` on each side (edge values
    replicated beyond the image) and returns the tile itself ("valid" output). Tiles whose
    whole neighbourhood holds one value are left as they are: every operation here maps a flat
    area to itself, so the cost follows the length of the mask's edges, not its area.
    """
    out = mask.copy()
    h, w = mask.shape
    bounds = Rect(0, 0, w, h)
    region = active.grow(margin).intersect(bounds)
    if region.is_empty() or margin <= 0:
        return out
    for ty in range(region.y, region.bottom, _TILE):
        for tx in range(region.x, region.right, _TILE):
            tile = Rect(tx, ty, _TILE, _TILE).intersect(region)
            want = tile.grow(margin)
            have = want.intersect(bounds)
            source = mask[have.slices]
            if source.min() == source.max():
                continue
            pad = (
                (have.y - want.y, want.bottom - have.bottom),
                (have.x - want.x, want.right - have.right),
            )
            out[tile.slices] = fn(np.pad(source, pad, mode="edge"), margin)
    return out


# -- grow / shrink: grey dilation / erosion by a disk ------------------------------------------


def _disk_halfwidths(radius: int) -> list[int]:
    """Half chord length of the disk |d| <= radius on each row offset -radius..radius."""
    r2 = radius * radius
    return [math.isqrt(r2 - dy * dy) for dy in range(-radius, radius + 1)]


def _morph_valid(padded: np.ndarray, radius: int, op: np.ufunc) -> np.ndarray:
    """max (or min) over the disk of ``radius`` around every pixel of the valid centre.

    Chord decomposition: a doubling table of running extrema along rows gives any horizontal
    run in two lookups; each row offset of the disk is one such run. Bands of rows keep the
    temporaries small.
    """
    hp, wp = padded.shape
    h, w = hp - 2 * radius, wp - 2 * radius
    out = np.empty((h, w), padded.dtype)
    band = max(16, (1 << 21) // max(wp, 1))
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        out[y0:y1] = _morph_band(padded[y0 : y1 + 2 * radius], radius, op, w)
    return out


def _morph_band(padded: np.ndarray, radius: int, op: np.ufunc, w: int) -> np.ndarray:
    h = padded.shape[0] - 2 * radius
    table = [padded]  # table[k][:, s] = op over padded[:, s : s + 2**k]
    while (1 << len(table)) <= 2 * radius + 1:
        prev, step = table[-1], 1 << (len(table) - 1)
        table.append(op(prev[:, :-step], prev[:, step:]))
    out = None
    for dy, hw in zip(range(-radius, radius + 1), _disk_halfwidths(radius), strict=True):
        k = (2 * hw + 1).bit_length() - 1
        t = table[k][radius + dy : radius + dy + h]
        right = radius + hw - (1 << k) + 1
        run = op(t[:, radius - hw : radius - hw + w], t[:, right : right + w])
        out = run if out is None else op(out, run, out=out)
    return out


def grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """Each pixel becomes the largest value within ``radius`` px (Euclidean disk)."""
    radius = int(radius)
    if radius <= 0:
        return mask.copy()
    radius = min(radius, max(mask.shape))
    # only pixels within `radius` of a place where the mask is not flat can change
    edges = _edge_bbox(mask)
    if edges.is_empty():
        return mask.copy()
    return _run_local(mask, edges, radius, lambda p, r: _morph_valid(p, r, np.maximum))


def shrink(mask: np.ndarray, radius: int) -> np.ndarray:
    """Each pixel becomes the smallest value within ``radius`` px (Euclidean disk)."""
    radius = int(radius)
    if radius <= 0:
        return mask.copy()
    radius = min(radius, max(mask.shape))
    # only pixels within `radius` of a place where the mask is not flat can change
    edges = _edge_bbox(mask)
    if edges.is_empty():
        return mask.copy()
    return _run_local(mask, edges, radius, lambda p, r: _morph_valid(p, r, np.minimum))


# -- feather: Gaussian approximated by three box blurs -----------------------------------------


def box_widths(sigma: float, n: int = 3) -> list[int]:
    """Odd box widths whose n-fold convolution has variance closest to ``sigma**2``."""
    ideal = math.sqrt(12.0 * sigma * sigma / n + 1.0)
    lo = math.floor(ideal)
    if lo % 2 == 0:
        lo -= 1
    lo = max(lo, 1)
    hi = lo + 2
    m = round((12.0 * sigma * sigma - n * lo * lo - 4 * n * lo - 3 * n) / (-4 * lo - 4))
    m = max(0, min(n, m))
    return [lo] * m + [hi] * (n - m)


def _box_valid(a: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Mean over ``width`` consecutive samples along ``axis`` ('valid': shorter by width-1)."""
    if width <= 1:
        return a
    shape = list(a.shape)
    shape[axis] += 1
    c = np.empty(shape, np.float64)
    first = [slice(None)] * a.ndim
    first[axis] = slice(0, 1)
    c[tuple(first)] = 0.0
    rest = [slice(None)] * a.ndim
    rest[axis] = slice(1, None)
    np.cumsum(a, axis=axis, dtype=np.float64, out=c[tuple(rest)])
    hi, lo = [slice(None)] * a.ndim, [slice(None)] * a.ndim
    hi[axis], lo[axis] = slice(width, None), slice(0, -width)
    out = c[tuple(hi)] - c[tuple(lo)]
    out *= 1.0 / width
    return out.astype(np.float32)


def feather_sigma(radius: float) -> float:
    """The Gaussian sigma used for a feather of ``radius`` px: the soft edge spans ~radius."""
    return radius / 2.0


#: up to this sigma the Gaussian is computed exactly (at most 17 taps); above it, three boxes
EXACT_SIGMA = 2.0


def gaussian_taps(sigma: float) -> np.ndarray:
    """A normalised Gaussian kernel truncated at 4 sigma."""
    r = math.ceil(4 * sigma)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-x * x / (2 * sigma * sigma))
    return k / k.sum()


def _taps_valid(a: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    n = a.shape[axis] - taps.size + 1
    out = np.zeros((*a.shape[:axis], n, *a.shape[axis + 1 :]), np.float64)
    for i, k in enumerate(taps):
        out += k * (a[i : i + n] if axis == 0 else a[:, i : i + n])
    return out


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """Soften the mask's edges: a Gaussian blur with sigma = radius / 2.

    Exact for sigma <= 2; above, three box blurs of matching variance (cost independent of
    the radius, within ~1-2 % of the Gaussian).
    """
    if radius <= 0:
        return mask.copy()
    sigma = feather_sigma(radius)
    edges = _edge_bbox(mask)
    if edges.is_empty():
        return mask.copy()
    if sigma <= EXACT_SIGMA:
        taps = gaussian_taps(sigma)

        def blur(padded: np.ndarray, _margin: int) -> np.ndarray:
            a = _taps_valid(_taps_valid(padded.astype(np.float64), taps, 0), taps, 1)
            return np.clip(a, 0.0, 1.0).astype(np.float32)

        return _run_local(mask, edges, taps.size // 2, blur)
    widths = box_widths(sigma)

    def boxes(padded: np.ndarray, _margin: int) -> np.ndarray:
        a = padded
        for w in widths:
            a = _box_valid(_box_valid(a, w, 0), w, 1)
        return np.clip(a, 0.0, 1.0)

    return _run_local(mask, edges, sum(w // 2 for w in widths), boxes)


def feather_reach(radius: float) -> int:
    """How far (px) a feather of ``radius`` can change the mask from its edges."""
    sigma = feather_sigma(radius)
    if sigma <= EXACT_SIGMA:
        return gaussian_taps(sigma).size // 2
    return sum(w // 2 for w in box_widths(sigma))


def invert(mask: np.ndarray) -> np.ndarray:
    return np.float32(1.0) - mask


# -- fill --------------------------------------------------------------------------------------


def flood_fill(mask: np.ndarray, x: int, y: int, threshold: float = 0.5) -> np.ndarray:
    """Set to 1 the 4-connected area of pixels below ``threshold`` that contains (x, y).

    Flood fill is inherently sequential, so this uses OpenCV's (numpy cannot do it in
    reasonable time on large images); OpenCV is imported only when needed.
    """
    import cv2

    out = mask.copy()
    h, w = mask.shape
    if not (0 <= x < w and 0 <= y < h) or mask[y, x] >= threshold:
        return out
    region = _open_area(mask, threshold)
    flags = 4 | (1 << 8) | cv2.FLOODFILL_MASK_ONLY
    filled = np.zeros((h + 2, w + 2), np.uint8)
    cv2.floodFill(region, filled, (int(x), int(y)), 1, 0, 0, flags)
    out[filled[1:-1, 1:-1] > 0] = 1.0
    return out


def fill_holes(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Set to 1 every unmasked area enclosed by the mask (not connected to the image border)."""
    import cv2

    h, w = mask.shape
    region = _open_area(mask, threshold)
    padded = np.ones((h + 2, w + 2), np.uint8)  # a 1 px open ring joins every border pixel
    padded[1:-1, 1:-1] = region
    cv2.floodFill(padded, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 2, 0, 0, 4)
    outside = padded[1:-1, 1:-1] == 2
    out = mask.copy()
    out[(region == 1) & ~outside] = 1.0
    return out


def _open_area(mask: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 image: 1 where the mask is below ``threshold`` (fillable), 0 elsewhere."""
    return (mask < threshold).astype(np.uint8)


# -- conversions for import / export ------------------------------------------------------------


def mask_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """A mask from image pixels (HxW, HxWx2/3/4, uint8 or uint16): float32 HxW in [0, 1].

    An alpha channel that is not fully opaque is the mask (opaque = edit); otherwise the
    luminance is (white = edit), as in the masks IOPaint and most tools export.
    """
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"mask pixels must be uint8 or uint16, got {pixels.dtype}")
    scale = np.float32(1.0 / np.iinfo(pixels.dtype).max)
    if pixels.ndim == 2:
        return pixels.astype(np.float32) * scale
    channels = pixels.shape[2]
    if channels in (2, 4):
        alpha = pixels[:, :, -1]
        if alpha.min() < np.iinfo(pixels.dtype).max:
            return alpha.astype(np.float32) * scale
    if channels >= 3:
        rgb = pixels[:, :, :3].astype(np.float32)
        return (rgb @ np.array([0.299, 0.587, 0.114], np.float32)) * scale
    return pixels[:, :, 0].astype(np.float32) * scale


def mask_to_pixels(mask: np.ndarray) -> np.ndarray:
    """uint8 HxW grayscale (255 = edit) for saving as a PNG."""
    return np.rint(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)


def _resample_axis(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear resampling along one axis; a triangle filter widened when shrinking (no aliasing)."""
    n = a.shape[axis]
    if n == size:
        return a
    scale = n / size
    support = max(scale, 1.0)
    centres = (np.arange(size) + 0.5) * scale - 0.5
    taps = math.ceil(support) * 2 + 1
    first = np.floor(centres - support + 1).astype(np.int64)
    idx = first[:, None] + np.arange(taps)[None, :]
    weights = np.clip(1.0 - np.abs(idx - centres[:, None]) / support, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    idx = np.clip(idx, 0, n - 1)
    moved = np.moveaxis(a, axis, 0)
    out = np.zeros((size, *moved.shape[1:]), np.float32)
    for k in range(taps):
        w = weights[:, k].astype(np.float32)
        out += moved[idx[:, k]] * w.reshape((size,) + (1,) * (moved.ndim - 1))
    return np.moveaxis(out, 0, axis)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Stretch a mask to ``width`` x ``height`` (bilinear up, area-like down), float32 [0, 1]."""
    out = _resample_axis(mask.astype(np.float32, copy=False), height, 0)
    out = _resample_axis(out, width, 1)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


# -- one undo step -----------------------------------------------------------------------------


def apply(doc: Document, new_mask: np.ndarray, name: str) -> Step | None:
    """Record ``new_mask`` as the document's mask in one step (None when nothing changed)."""
    return doc.set_mask(new_mask, name)


def grow_document(doc: Document, radius: int) -> Step | None:
    return apply(doc, grow(doc.mask, radius), f"Grow mask {radius} px")


def shrink_document(doc: Document, radius: int) -> Step | None:
    return apply(doc, shrink(doc.mask, radius), f"Shrink mask {radius} px")


def feather_document(doc: Document, radius: float) -> Step | None:
    return apply(doc, feather(doc.mask, radius), f"Feather mask {radius:g} px")


def fill_holes_document(doc: Document) -> Step | None:
    return apply(doc, fill_holes(doc.mask), "Fill enclosed areas")


def flood_fill_document(doc: Document, x: int, y: int) -> Step | None:
    return apply(doc, flood_fill(doc.mask, x, y), "Fill mask")
