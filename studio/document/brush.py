"""Brush strokes: dabs spaced along the path, per-stroke coverage, one undo step per stroke.

Coverage within a stroke combines by maximum, so a 50 % opacity stroke stays at 50 % where its
own dabs overlap (as in Krita's and Photoshop's default brush), and every dab is recomputed from
the pixels as they were before the stroke. Works on layers (paint, erase) and on the mask.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from studio.document.commands import MASK, Target
from studio.document.edit import TILE
from studio.document.history import Step
from studio.geometry import Rect

if TYPE_CHECKING:
    from studio.document.document import Document


@dataclass(frozen=True)
class BrushSettings:
    """``size`` is the diameter in pixels; ``spacing`` is the dab distance as a fraction of it."""

    size: float = 20.0
    hardness: float = 0.8
    opacity: float = 1.0
    spacing: float = 0.1
    color: tuple[int, int, int] = (0, 0, 0)
    erase: bool = False
    pressure_size: bool = True
    pressure_opacity: bool = False


def dab_alpha(radius: float, hardness: float, cx: float, cy: float, rect: Rect) -> np.ndarray:
    """Coverage in [0, 1] of a round dab centred at (cx, cy), sampled at pixel centres of rect.

    Fully opaque inside ``hardness * radius``, smooth-step falloff to zero at ``radius``; a
    half-pixel antialiasing ramp keeps hard brushes from aliasing.
    """
    ys = np.arange(rect.y, rect.bottom, dtype=np.float32) + 0.5 - cy
    xs = np.arange(rect.x, rect.right, dtype=np.float32) + 0.5 - cx
    d = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    r = max(radius, 0.5)
    inner = min(hardness, 0.999) * r
    t = np.clip((d - inner) / max(r - inner, 0.5), 0.0, 1.0)
    soft = 1.0 - t * t * (3.0 - 2.0 * t)
    edge = np.clip(r + 0.5 - d, 0.0, 1.0)  # antialias the outer rim
    return (soft * edge).astype(np.float32)


class Stroke:
    """One stroke on one target. ``move_to`` once, ``line_to`` per event, then ``end``."""

    def __init__(self, doc: Document, target: Target, brush: BrushSettings, name: str) -> None:
        self.doc = doc
        self.target = target
        self.brush = brush
        self.edit = doc.begin_edit(target, name)
        self._coverage: dict[tuple[int, int], np.ndarray] = {}
        self._last: tuple[float, float, float] | None = None
        self._carry = 0.0  # distance travelled since the last dab
        self.dabs = 0

    # -- path ----------------------------------------------------------------------------------
    def move_to(self, x: float, y: float, pressure: float = 1.0) -> Rect:
        self._last = (x, y, pressure)
        self._carry = 0.0
        return self._dab(x, y, pressure)

    def line_to(self, x: float, y: float, pressure: float = 1.0) -> Rect:
        """Stamp dabs every ``spacing * size`` pixels from the last point; returns dirty area."""
        if self._last is None:
            return self.move_to(x, y, pressure)
        x0, y0, p0 = self._last
        length = math.hypot(x - x0, y - y0)
        step = max(0.5, self.brush.spacing * self.brush.size * max(min(p0, pressure), 0.1))
        dirty = Rect(0, 0, 0, 0)
        dist = step - self._carry
        while dist <= length:
            t = dist / length
            dirty = dirty.union(
                self._dab(x0 + t * (x - x0), y0 + t * (y - y0), p0 + t * (pressure - p0))
            )
            dist += step
        self._carry = length - (dist - step)
        self._last = (x, y, pressure)
        return dirty

    def end(self) -> Step | None:
        self._coverage.clear()
        return self.edit.commit()

    def cancel(self) -> None:
        self._coverage.clear()
        self.edit.cancel()

    # -- rasterisation -------------------------------------------------------------------------
    def _dab(self, cx: float, cy: float, pressure: float) -> Rect:
        """Stamp one dab; returns the rectangle whose pixels actually changed.

        Coverage is kept per 64 px tile (like the undo backups); only the part of each tile
        where this dab raises the stroke's coverage is re-blended. Plain ints in the loop: it
        runs for every tile of every dab.
        """
        b = self.brush
        pressure = float(np.clip(pressure, 0.0, 1.0))
        radius = b.size / 2 * (pressure if b.pressure_size else 1.0)
        strength = b.opacity * (pressure if b.pressure_opacity else 1.0)
        if radius <= 0 or strength <= 0:
            return Rect(0, 0, 0, 0)
        full, stamp = _stamp(radius, b.hardness, cx, cy)
        box = self.edit.touch(full)
        if box.is_empty():
            return box
        array, saved, coverage = self.edit.array, self.edit._saved, self._coverage
        height, width = array.shape[:2]
        s32 = np.float32(strength)
        dx0 = dy0 = 1 << 62
        dx1 = dy1 = -1
        for ty in range(box.y // TILE, (box.bottom - 1) // TILE + 1):
            ty0 = ty * TILE
            y0, y1 = max(box.y, ty0), min(box.bottom, ty0 + TILE)
            for tx in range(box.x // TILE, (box.right - 1) // TILE + 1):
                tx0 = tx * TILE
                x0, x1 = max(box.x, tx0), min(box.right, tx0 + TILE)
                cov = coverage.get((ty, tx))
                if cov is None:
                    shape = (min(TILE, height - ty0), min(TILE, width - tx0))
                    cov = coverage[ty, tx] = np.zeros(shape, np.float32)
                new = stamp[y0 - full.y : y1 - full.y, x0 - full.x : x1 - full.x]
                c = cov[y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0]
                rose = new > c
                rows = np.flatnonzero(rose.any(axis=1))
                if rows.size == 0:
                    continue  # an earlier dab of this stroke already covers it
                r0, r1 = int(rows[0]), int(rows[-1]) + 1
                cols = np.flatnonzero(rose[r0:r1].any(axis=0))
                c0, c1 = int(cols[0]), int(cols[-1]) + 1
                part = c[r0:r1, c0:c1]
                np.maximum(part, new[r0:r1, c0:c1], out=part)
                ya, xa = y0 + r0, x0 + c0
                original = saved[ty, tx][
                    ya - ty0 : ya - ty0 + r1 - r0, xa - tx0 : xa - tx0 + c1 - c0
                ]
                array[ya : y0 + r1, xa : x0 + c1] = self._blend(original, part * s32)
                dx0, dy0 = min(dx0, xa), min(dy0, ya)
                dx1, dy1 = max(dx1, x0 + c1), max(dy1, y0 + r1)
        self.dabs += 1
        if dx1 < 0:
            return Rect(0, 0, 0, 0)
        dirty = Rect.from_edges(dx0, dy0, dx1, dy1)
        self.doc.notify_pixels(self.target, dirty)
        return dirty

    def _blend(self, original: np.ndarray, a: np.ndarray) -> np.ndarray:
        if self.target == MASK:
            if self.brush.erase:
                return original * (1.0 - a)
            return original + a * (1.0 - original)
        out = np.empty_like(original)
        if self.brush.erase:
            out[:, :, :3] = original[:, :, :3]
            alpha = original[:, :, 3].astype(np.float32) * (1.0 - a)
            out[:, :, 3] = np.rint(alpha).astype(np.uint8)
            return out
        color = np.asarray(self.brush.color, np.float32)
        a3 = a[:, :, None]
        if original[:, :, 3].min() == 255:  # opaque below (photos): a plain lerp
            rgb = original[:, :, :3].astype(np.float32)
            rgb += (color - rgb) * a3
            out[:, :, :3] = np.rint(rgb).astype(np.uint8)
            out[:, :, 3] = 255
            return out
        src = original.astype(np.float32) * np.float32(1.0 / 255.0)
        da = src[:, :, 3:4]
        oa = a3 + da * (1.0 - a3)
        rgb = np.divide(
            color / 255.0 * a3 + src[:, :, :3] * da * (1.0 - a3),
            oa,
            out=np.zeros_like(src[:, :, :3]),
            where=oa > 0,
        )
        out[:, :, :3] = np.rint(rgb * 255.0).astype(np.uint8)
        out[:, :, 3:4] = np.rint(oa * 255.0).astype(np.uint8)
        return out


#: dab stamps by (radius, hardness, sub-pixel offset), most recently used last
_STAMPS: OrderedDict[tuple[int, int, int, int], tuple[Rect, np.ndarray]] = OrderedDict()
_STAMP_BYTES = 32 << 20
_SUBPIXEL = 8  # dab centres are placed to 1/8 px


def _stamp(radius: float, hardness: float, cx: float, cy: float) -> tuple[Rect, np.ndarray]:
    """The dab's box (unclipped) and its coverage, reused for equal radius and sub-pixel offset
    (a moving brush repeats a few offsets, so big brushes skip most of the maths)."""
    qx, qy = round(cx * _SUBPIXEL), round(cy * _SUBPIXEL)
    ix, iy = qx // _SUBPIXEL, qy // _SUBPIXEL
    key = (round(radius * _SUBPIXEL), round(hardness * 1000), qx % _SUBPIXEL, qy % _SUBPIXEL)
    hit = _STAMPS.get(key)
    if hit is not None:
        _STAMPS.move_to_end(key)
        rel, alpha = hit
        return rel.translate(ix, iy), alpha
    fx, fy = (qx % _SUBPIXEL) / _SUBPIXEL, (qy % _SUBPIXEL) / _SUBPIXEL
    rel = Rect.from_edges(
        math.floor(fx - radius - 1),
        math.floor(fy - radius - 1),
        math.ceil(fx + radius + 1),
        math.ceil(fy + radius + 1),
    )
    alpha = dab_alpha(radius, hardness, fx, fy, rel)
    alpha.flags.writeable = False
    _STAMPS[key] = (rel, alpha)
    total = sum(a.nbytes for _, a in _STAMPS.values())
    while total > _STAMP_BYTES and len(_STAMPS) > 1:
        _, (_, old) = _STAMPS.popitem(last=False)
        total -= old.nbytes
    return rel.translate(ix, iy), alpha
