"""Reversible commands recorded in the history: pixel patches and layer-structure edits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.geometry import Rect, union_all

if TYPE_CHECKING:
    from studio.document.document import Document
    from studio.document.layer import Layer

#: what a pixel edit applies to: a layer id, or the document mask
Target = int | str
MASK = "mask"


@dataclass
class TilePatch:
    """Old and new pixels of one rectangle of one array."""

    rect: Rect
    before: np.ndarray
    after: np.ndarray


@dataclass
class PixelPatch:
    """Pixels of one target changed in some rectangles (tiles of a stroke, or one result box)."""

    target: Target
    tiles: list[TilePatch]

    @property
    def nbytes(self) -> int:
        return sum(t.before.nbytes + t.after.nbytes for t in self.tiles)

    @property
    def bounds(self) -> Rect:
        return union_all(t.rect for t in self.tiles)

    def undo(self, doc: Document) -> None:
        self._apply(doc, "before")

    def redo(self, doc: Document) -> None:
        self._apply(doc, "after")

    def _apply(self, doc: Document, which: str) -> None:
        array = doc.array_for(self.target)
        for tile in self.tiles:
            array[tile.rect.slices] = getattr(tile, which)
        doc.notify_pixels(self.target, self.bounds)


@dataclass
class ComputedPatch:
    """One rectangle whose new pixels are a pure function of the old ones (invert, fill).

    Only the old pixels are stored; redo recomputes the new ones, so the step costs half.
    """

    target: Target
    rect: Rect
    before: np.ndarray
    compute: Callable[[np.ndarray], np.ndarray]

    @property
    def nbytes(self) -> int:
        return self.before.nbytes

    def undo(self, doc: Document) -> None:
        doc.array_for(self.target)[self.rect.slices] = self.before
        doc.notify_pixels(self.target, self.rect)

    def redo(self, doc: Document) -> None:
        doc.array_for(self.target)[self.rect.slices] = self.compute(self.before)
        doc.notify_pixels(self.target, self.rect)


@dataclass
class InsertLayer:
    """A layer added at ``index`` (undo removes it)."""

    index: int
    layer: Layer

    @property
    def nbytes(self) -> int:
        return self.layer.pixels.nbytes

    def undo(self, doc: Document) -> None:
        doc._remove_layer_at(self.index)

    def redo(self, doc: Document) -> None:
        doc._insert_layer_at(self.index, self.layer)


@dataclass
class RemoveLayer:
    """A layer removed from ``index`` (undo puts it back)."""

    index: int
    layer: Layer

    @property
    def nbytes(self) -> int:
        return self.layer.pixels.nbytes

    def undo(self, doc: Document) -> None:
        doc._insert_layer_at(self.index, self.layer)

    def redo(self, doc: Document) -> None:
        doc._remove_layer_at(self.index)


@dataclass
class MoveLayer:
    source: int
    dest: int
    nbytes: int = 0

    def undo(self, doc: Document) -> None:
        doc._move_layer(self.dest, self.source)

    def redo(self, doc: Document) -> None:
        doc._move_layer(self.source, self.dest)


@dataclass
class SetLayerProps:
    """Name, visibility or opacity of one layer."""

    layer_id: int
    before: dict[str, Any]
    after: dict[str, Any]
    nbytes: int = 0

    def undo(self, doc: Document) -> None:
        doc._set_props(self.layer_id, self.before)

    def redo(self, doc: Document) -> None:
        doc._set_props(self.layer_id, self.after)


@dataclass
class ReplaceContent:
    """Every layer and the mask swapped at once, possibly at a new size (e.g. an upscale)."""

    before: tuple[list[Layer], np.ndarray, int]
    after: tuple[list[Layer], np.ndarray, int]

    @property
    def nbytes(self) -> int:
        return sum(
            sum(layer.pixels.nbytes for layer in layers) + mask.nbytes
            for layers, mask, _ in (self.before, self.after)
        )

    def undo(self, doc: Document) -> None:
        doc._set_content(*self.before)

    def redo(self, doc: Document) -> None:
        doc._set_content(*self.after)
