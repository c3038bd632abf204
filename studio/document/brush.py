"""Brush strokes: dabs spaced along the path, per-stroke coverage, one undo step per stroke.

Coverage within a stroke combines by maximum, so a 50 % opacity stroke stays at 50 % where its
own dabs overlap (as in Krita's and Photoshop's default brush), and every dab is recomputed from
the pixels as they were before the stroke. Works on layers (paint, erase) and on the mask.
"""

from __future__ import annotations

import math
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
        b = self.brush
        pressure = float(np.clip(pressure, 0.0, 1.0))
        radius = b.size / 2 * (pressure if b.pressure_size else 1.0)
        strength = b.opacity * (pressure if b.pressure_opacity else 1.0)
        if radius <= 0 or strength <= 0:
            return Rect(0, 0, 0, 0)
        box = Rect.from_edges(
            math.floor(cx - radius - 1),
            math.floor(cy - radius - 1),
            math.ceil(cx + radius + 1),
            math.ceil(cy + radius + 1),
        )
        box = self.edit.touch(box)
        if box.is_empty():
            return box
        alpha = dab_alpha(radius, b.hardness, cx, cy, box)
        for ty in range(box.y // TILE, (box.bottom - 1) // TILE + 1):
            for tx in range(box.x // TILE, (box.right - 1) // TILE + 1):
                self._stamp_tile(ty, tx, box, alpha, strength)
        self.dabs += 1
        self.doc.notify_pixels(self.target, box)
        return box

    def _stamp_tile(self, ty: int, tx: int, box: Rect, alpha: np.ndarray, strength: float) -> None:
        tile = self.edit._tile_rect(ty, tx)
        sub = box.intersect(tile)
        if sub.is_empty():
            return
        cov = self._coverage.get((ty, tx))
        if cov is None:
            cov = self._coverage[ty, tx] = np.zeros((tile.h, tile.w), np.float32)
        in_tile = sub.translate(-tile.x, -tile.y).slices
        in_box = sub.translate(-box.x, -box.y).slices
        np.maximum(cov[in_tile], alpha[in_box], out=cov[in_tile])
        a = cov[in_tile] * np.float32(strength)
        original = self.edit._saved[ty, tx][in_tile]
        self.edit.array[sub.slices] = self._blend(original, a)

    def _blend(self, original: np.ndarray, a: np.ndarray) -> np.ndarray:
        if self.target == MASK:
            if self.brush.erase:
                return original * (1.0 - a)
            return original + a * (1.0 - original)
        src = original.astype(np.float32) * np.float32(1.0 / 255.0)
        out = np.empty_like(original)
        a3 = a[:, :, None]
        if self.brush.erase:
            out[:, :, :3] = original[:, :, :3]
            out[:, :, 3] = np.rint(src[:, :, 3] * (1.0 - a) * 255.0).astype(np.uint8)
            return out
        color = np.asarray(self.brush.color, np.float32)[None, None, :] / 255.0
        da = src[:, :, 3:4]
        oa = a3 + da * (1.0 - a3)
        rgb = np.divide(
            color * a3 + src[:, :, :3] * da * (1.0 - a3),
            oa,
            out=np.zeros_like(src[:, :, :3]),
            where=oa > 0,
        )
        out[:, :, :3] = np.rint(rgb * 255.0).astype(np.uint8)
        out[:, :, 3:4] = np.rint(oa * 255.0).astype(np.uint8)
        return out
