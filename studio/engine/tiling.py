"""Split an image into tiles, run a function per tile, and put the output back without seams.

Two modes:

* **crop** (``blend=0``): tile cores partition the image; each tile is run with ``pad`` pixels of
  real context around its core and only the core's output is kept. For a network whose receptive
  field fits in ``pad`` this equals the untiled output exactly, so upscalers use it.
* **blend** (``blend>0``): neighbouring footprints overlap by ``blend`` pixels and are mixed with
  weights that fall linearly to zero at each footprint's inner edges (normalised, so they sum to
  one). Needed where the output depends on whole-tile statistics (instance norm in style nets).

On out-of-memory the tile side is halved and the run restarts (crop-mode output does not depend
on the tile size); below ``MIN_TILE`` the job fails with a clear message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from studio.engine.events import Partial, Progress
from studio.engine.jobs import CancelToken
from studio.errors import OutOfMemoryError
from studio.geometry import Rect

MIN_TILE = 32
TileFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Tile:
    """``core`` partitions the image; ``footprint`` is what the tile writes (core plus blend
    overlap); ``context`` is what the function sees (footprint plus pad, clipped)."""

    index: int
    core: Rect
    footprint: Rect
    context: Rect


def _split(length: int, tile: int, align: int = 1) -> list[tuple[int, int]]:
    """[start, end) segments of near-equal size, none longer than ``tile``; inner edges are
    multiples of ``align`` (networks that downsample need tiles on their stride grid)."""
    tile = max(align, tile // align * align)
    n = max(1, math.ceil(length / tile))
    edges = [min(length, round(i * length / n / align) * align) for i in range(n)] + [length]
    edges = sorted(set(edges))
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def plan_tiles(
    width: int,
    height: int,
    tile: int,
    pad: int,
    blend: int = 0,
    align: int = 1,
    uniform: bool = False,
) -> list[Tile]:
    """Tiles in raster order. ``tile <= 0`` means one tile for the whole image.

    With ``align`` > 1, core edges, ``pad`` and ``blend`` are multiples of it, so every
    context starts on the alignment grid (or at the image edge).

    ``uniform`` (crop mode): every context has the same shape, the largest core plus ``pad`` on
    each side, with edge tiles' contexts shifted inward rather than clipped. A compiled model
    then sees one input shape per job (one compilation), and the output is unchanged, since in
    crop mode a tile only needs *at least* ``pad`` of context around its core.
    """
    bounds = Rect.from_size(width, height)
    if tile <= 0:
        return [Tile(0, bounds, bounds, bounds)]
    pad = -(-pad // align) * align
    blend = -(-blend // (2 * align)) * 2 * align if blend else 0
    tiles = []
    half = blend // 2
    for y0, y1 in _split(height, tile, align):
        for x0, x1 in _split(width, tile, align):
            core = Rect.from_edges(x0, y0, x1, y1)
            footprint = Rect.from_edges(
                x0 - half, y0 - half, x1 + (blend - half), y1 + (blend - half)
            ).intersect(bounds)
            context = footprint.grow(pad).intersect(bounds)
            tiles.append(Tile(len(tiles), core, footprint, context))
    if uniform and not blend and align == 1 and len(tiles) > 1:
        tiles = _uniform_contexts(tiles, width, height, pad)
    return tiles


def _uniform_contexts(tiles: list[Tile], width: int, height: int, pad: int) -> list[Tile]:
    cw = min(width, max(t.core.w for t in tiles) + 2 * pad)
    ch = min(height, max(t.core.h for t in tiles) + 2 * pad)
    out = []
    for t in tiles:
        # centred on the core, then moved inside the image; alignment is kept because the
        # shift only happens at image edges, where the context starts at 0 or ends at the edge
        x = min(max(0, t.core.x - pad), width - cw)
        y = min(max(0, t.core.y - pad), height - ch)
        out.append(Tile(t.index, t.core, t.footprint, Rect(x, y, cw, ch)))
    return out


def tile_for_budget(
    bytes_per_pixel: float, budget_bytes: int, multiple: int = 8, lo: int = 64, hi: int = 1024
) -> int:
    """Largest square tile side whose working memory stays within ``budget_bytes``."""
    side = int(math.sqrt(max(budget_bytes, 1) / max(bytes_per_pixel, 1e-9)))
    side = max(lo, min(hi, side))
    return max(multiple, side // multiple * multiple)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory and for failed CPU allocations."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    text = str(exc).lower()
    return name == "OutOfMemoryError" or "out of memory" in text or "can't allocate memory" in text


def _ramp(n: int, lo_blend: int, hi_blend: int) -> np.ndarray:
    """1-D weights: rise over the first ``lo_blend`` samples, fall over the last ``hi_blend``."""
    w = np.ones(n, np.float32)
    if lo_blend > 0:
        w[:lo_blend] = (np.arange(lo_blend, dtype=np.float32) + 0.5) / lo_blend
    if hi_blend > 0:
        w[n - hi_blend :] = np.minimum(
            w[n - hi_blend :], (np.arange(hi_blend, 0, -1, dtype=np.float32) - 0.5) / hi_blend
        )
    return w


def run_tiled(
    image: np.ndarray,
    fn: TileFn,
    *,
    scale: int,
    tile: int,
    pad: int,
    cancel: CancelToken,
    blend: int = 0,
    out_channels: int | None = None,
    quantize: Callable[[np.ndarray], np.ndarray] | None = None,
    out_dtype: np.dtype | type = np.float32,
    stage: str = "tiles",
    align: int = 1,
    uniform: bool = False,
) -> Generator[Progress | Partial, None, np.ndarray]:
    """Run ``fn`` over tiles of ``image`` (HxWxC float32), yielding progress and finished tiles.

    ``fn`` maps an hxwxC float32 array to an (h*scale)x(w*scale)xC' float32 array. In crop mode
    each finished tile is converted by ``quantize`` (e.g. to uint8) and written straight into an
    ``out_dtype`` output, so a large upscale never holds a float copy of the whole result.
    Returns the full output (via ``StopIteration.value``). ``uniform``: every tile the same
    shape (see :func:`plan_tiles`).
    """
    while True:
        try:
            return (
                yield from _run_once(
                    image,
                    fn,
                    scale,
                    tile,
                    pad,
                    cancel,
                    blend,
                    out_channels,
                    quantize,
                    out_dtype,
                    stage,
                    align,
                    uniform,
                )
            )
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            h, w = image.shape[:2]
            current = tile if tile > 0 else max(h, w)
            if current // 2 < MIN_TILE:
                raise OutOfMemoryError(
                    f"not enough memory even with {current}px tiles; close other programs, "
                    "pick a smaller model or a smaller image"
                ) from None
            tile = current // 2
            yield Progress(0, 1, f"out of memory: retrying with {tile}px tiles")


def _run_once(
    image,
    fn,
    scale,
    tile,
    pad,
    cancel,
    blend,
    out_channels,
    quantize,
    out_dtype,
    stage,
    align,
    uniform,
) -> Generator[Progress | Partial, None, np.ndarray]:
    h, w, c = image.shape
    c_out = out_channels or c
    if tile > 0:
        blend = min(blend, tile // 2)
    tiles = plan_tiles(w, h, tile, pad, blend, align, uniform)
    out_size = (w * scale, h * scale)
    if blend > 0 and len(tiles) > 1:
        acc = np.zeros((h * scale, w * scale, c_out), np.float32)
        wsum = np.zeros((h * scale, w * scale, 1), np.float32)
    else:
        blend = 0
        out = np.empty((h * scale, w * scale, c_out), out_dtype)
    yield Progress(0, len(tiles), stage)
    started = time.perf_counter()
    for t in tiles:
        cancel.check()
        result = fn(np.ascontiguousarray(image[t.context.slices]))
        expected = (t.context.h * scale, t.context.w * scale)
        if result.shape[:2] != expected:
            raise RuntimeError(f"tile function returned {result.shape[:2]}, expected {expected}")
        fp = t.footprint.translate(-t.context.x, -t.context.y).scale(scale)
        piece = result[fp.slices]
        dest = t.footprint.scale(scale)
        if blend:
            ramp = blend * scale  # the whole overlap with a neighbour, on sides that have one
            wy = _ramp(
                dest.h,
                ramp * (t.footprint.y < t.core.y),
                ramp * (t.footprint.bottom > t.core.bottom),
            )
            wx = _ramp(
                dest.w, ramp * (t.footprint.x < t.core.x), ramp * (t.footprint.right > t.core.right)
            )
            weight = (wy[:, None] * wx[None, :])[:, :, None]
            acc[dest.slices] += piece * weight
            wsum[dest.slices] += weight
            partial = acc[dest.slices] / np.maximum(wsum[dest.slices], 1e-8)
            final = False
        else:
            partial = quantize(piece) if quantize else piece
            out[dest.slices] = partial
            final = True
        del result
        yield Partial(dest, partial, out_size, final)
        elapsed = time.perf_counter() - started
        yield Progress(t.index + 1, len(tiles), stage, elapsed)
    if blend:
        full = acc / np.maximum(wsum, 1e-8)
        return quantize(full) if quantize else full.astype(out_dtype)
    return out
