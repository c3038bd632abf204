"""Stroke-style edits that back up tiles lazily, so memory follows the touched area."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from studio.document.commands import PixelPatch, Target, TilePatch
from studio.document.history import Step
from studio.geometry import Rect

if TYPE_CHECKING:
    from studio.document.document import Document

TILE = 64


class PixelEdit:
    """An open edit of one target. Call :meth:`touch` with a rectangle *before* writing into it.

    The first touch of each 64x64 tile copies its old pixels; :meth:`commit` pairs them with the
    new pixels and pushes one history step. :meth:`cancel` restores the old pixels.
    """

    def __init__(self, doc: Document, target: Target, name: str) -> None:
        self.doc = doc
        self.target = target
        self.name = name
        self.array = doc.array_for(target)
        self._saved: dict[tuple[int, int], np.ndarray] = {}
        self._closed = False
        self.dirty = Rect(0, 0, 0, 0)

    def touch(self, rect: Rect) -> Rect:
        """Back up tiles under ``rect``; returns ``rect`` clipped to the array (maybe empty)."""
        if self._closed:
            raise RuntimeError("edit already committed or cancelled")
        h, w = self.array.shape[:2]
        rect = rect.intersect(Rect(0, 0, w, h))
        if rect.is_empty():
            return rect
        for ty in range(rect.y // TILE, (rect.bottom - 1) // TILE + 1):
            for tx in range(rect.x // TILE, (rect.right - 1) // TILE + 1):
                if (ty, tx) not in self._saved:
                    self._saved[ty, tx] = self.array[self._tile_rect(ty, tx).slices].copy()
        self.dirty = self.dirty.union(rect)
        return rect

    def _tile_rect(self, ty: int, tx: int) -> Rect:
        h, w = self.array.shape[:2]
        return Rect(tx * TILE, ty * TILE, TILE, TILE).intersect(Rect(0, 0, w, h))

    @property
    def backup_nbytes(self) -> int:
        return sum(a.nbytes for a in self._saved.values())

    def commit(self) -> Step | None:
        """Record the edit as one undo step (None when nothing actually changed)."""
        self._closed = True
        tiles = []
        for (ty, tx), before in self._saved.items():
            rect = self._tile_rect(ty, tx)
            after = self.array[rect.slices]
            if not np.array_equal(before, after):
                tiles.append(TilePatch(rect, before, after.copy()))
        self._saved.clear()
        if not tiles:
            return None
        step = Step(self.name, [PixelPatch(self.target, tiles)])
        self.doc.history.push(step)
        return step

    def cancel(self) -> None:
        """Put every touched tile back as it was."""
        self._closed = True
        for (ty, tx), before in self._saved.items():
            self.array[self._tile_rect(ty, tx).slices] = before
        self._saved.clear()
        if not self.dirty.is_empty():
            self.doc.notify_pixels(self.target, self.dirty)
