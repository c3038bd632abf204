"""The document: ordered layers, one mask, a selection, an undo history and a revision counter.

Pure numpy. Observers (the UI) subscribe with :meth:`Document.subscribe` and receive
:class:`Change` values; the document never knows who listens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.document.commands import (
    MASK,
    InsertLayer,
    MoveLayer,
    PixelPatch,
    RemoveLayer,
    ReplaceContent,
    SetLayerProps,
    Target,
    TilePatch,
)
from studio.document.edit import PixelEdit
from studio.document.history import DEFAULT_BUDGET_BYTES, History, Step
from studio.document.layer import Layer, composite
from studio.geometry import Rect


@dataclass(frozen=True)
class Change:
    """What changed: ``kind`` is one of pixels, mask, layers, size, history, selection."""

    kind: str
    rect: Rect | None = None
    target: Target | None = None


@dataclass
class DocumentInfo:
    """Where the document came from and what must survive export (ICC profile, EXIF, text)."""

    path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Document:
    """Layers bottom-to-top, an active layer, a float32 mask in [0, 1] (1 = edit), a selection."""

    def __init__(
        self, width: int, height: int, *, history_budget: int = DEFAULT_BUDGET_BYTES
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"document size must be positive, got {width}x{height}")
        self.width = width
        self.height = height
        self.layers: list[Layer] = []
        self.active_index = 0
        self.mask = np.zeros((height, width), np.float32)
        self.selection: Rect | None = None
        self.history = History(history_budget)
        self.history.on_change = lambda: self._emit(Change("history"))
        self.revision = 0
        self.info = DocumentInfo()
        self._listeners: list[Callable[[Change], None]] = []

    @classmethod
    def from_image(cls, pixels: np.ndarray, name: str = "Background", **kwargs: Any) -> Document:
        """A one-layer document from HxWx{3,4} uint8 pixels (copied)."""
        doc = cls(int(pixels.shape[1]), int(pixels.shape[0]), **kwargs)
        doc.layers.append(Layer.from_rgb(pixels, name))
        return doc

    # -- observation -------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener`` on every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, change: Change) -> None:
        if change.kind != "history":
            self.revision += 1
        for listener in list(self._listeners):
            listener(change)

    def notify_pixels(self, target: Target, rect: Rect) -> None:
        """Tell observers that pixels of ``target`` changed inside ``rect``."""
        self._emit(Change("mask" if target == MASK else "pixels", rect, target))

    # -- access ------------------------------------------------------------------------------
    @property
    def bounds(self) -> Rect:
        return Rect.from_size(self.width, self.height)

    @property
    def active_layer(self) -> Layer:
        return self.layers[self.active_index]

    def layer_by_id(self, layer_id: int) -> Layer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(f"no layer with id {layer_id}")

    def index_of(self, layer_id: int) -> int:
        return self.layers.index(self.layer_by_id(layer_id))

    def array_for(self, target: Target) -> np.ndarray:
        """The live array an edit of ``target`` writes into (HxWx4 uint8 or the HxW mask)."""
        return self.mask if target == MASK else self.layer_by_id(int(target)).pixels

    def composite(self, rect: Rect | None = None) -> np.ndarray:
        """Visible layers flattened within ``rect`` (default: everything), RGBA uint8."""
        return composite(self.layers, self.bounds if rect is None else rect)

    # -- pixel edits -------------------------------------------------------------------------
    def begin_edit(self, target: Target, name: str) -> PixelEdit:
        """Start a stroke-like edit; call ``touch`` before writing, then ``commit``."""
        return PixelEdit(self, target, name)

    def apply_pixels(
        self, target: Target, rect: Rect, pixels: np.ndarray, name: str
    ) -> Step | None:
        """Replace the pixels of ``target`` in ``rect`` as one undo step (an engine result)."""
        rect = rect.intersect(self.bounds)
        if rect.is_empty():
            return None
        array = self.array_for(target)
        if pixels.shape[:2] != (rect.h, rect.w):
            raise ValueError(f"pixels {pixels.shape[:2]} do not fit rect {rect}")
        before = array[rect.slices].copy()
        array[rect.slices] = pixels
        step = Step(
            name, [PixelPatch(target, [TilePatch(rect, before, array[rect.slices].copy())])]
        )
        self.notify_pixels(target, rect)
        self.history.push(step)
        return step

    def set_mask(self, mask: np.ndarray, name: str) -> Step | None:
        """Replace the whole mask (float in [0, 1], HxW) as one undo step."""
        if mask.shape != self.mask.shape:
            raise ValueError(
                f"mask is {mask.shape[1]}x{mask.shape[0]}, document is {self.width}x{self.height}"
            )
        return self.apply_pixels(MASK, self.bounds, np.clip(mask, 0, 1).astype(np.float32), name)

    # -- undo --------------------------------------------------------------------------------
    def undo(self) -> Step | None:
        return self.history.undo(self)

    def redo(self) -> Step | None:
        return self.history.redo(self)

    # -- layer structure (each public call is one undo step) ----------------------------------
    def add_layer(self, layer: Layer, index: int | None = None, name: str = "Add layer") -> Layer:
        if (layer.width, layer.height) != (self.width, self.height):
            raise ValueError("layer size differs from the document")
        index = len(self.layers) if index is None else index
        command = InsertLayer(index, layer)
        command.redo(self)
        self.history.push(Step(name, [command]))
        return layer

    def remove_layer(self, layer_id: int) -> None:
        if len(self.layers) == 1:
            raise ValueError("a document keeps at least one layer")
        index = self.index_of(layer_id)
        command = RemoveLayer(index, self.layers[index])
        command.redo(self)
        self.history.push(Step(f"Delete {command.layer.name}", [command]))

    def move_layer(self, source: int, dest: int) -> None:
        if source == dest:
            return
        command = MoveLayer(source, dest)
        command.redo(self)
        self.history.push(Step("Reorder layers", [command]))

    def set_layer_props(self, layer_id: int, name: str = "Layer properties", **props: Any) -> None:
        layer = self.layer_by_id(layer_id)
        before = {k: getattr(layer, k) for k in props}
        if before == props:
            return
        command = SetLayerProps(layer_id, before, dict(props))
        command.redo(self)
        self.history.push(Step(name, [command]))

    def replace_content(self, layers: list[Layer], mask: np.ndarray, name: str) -> None:
        """Swap all layers and the mask, possibly at a new size, as one undo step."""
        before = (list(self.layers), self.mask, self.active_index)
        command = ReplaceContent(before, (layers, mask, min(self.active_index, len(layers) - 1)))
        command.redo(self)
        self.history.push(Step(name, [command]))

    # -- primitives used by commands (no history) ----------------------------------------------
    def _insert_layer_at(self, index: int, layer: Layer) -> None:
        self.layers.insert(index, layer)
        self.active_index = index
        self._emit(Change("layers"))

    def _remove_layer_at(self, index: int) -> None:
        del self.layers[index]
        self.active_index = min(self.active_index, len(self.layers) - 1)
        self._emit(Change("layers"))

    def _move_layer(self, source: int, dest: int) -> None:
        layer = self.layers.pop(source)
        self.layers.insert(dest, layer)
        self.active_index = dest
        self._emit(Change("layers"))

    def _set_props(self, layer_id: int, props: dict[str, Any]) -> None:
        layer = self.layer_by_id(layer_id)
        for key, value in props.items():
            setattr(layer, key, value)
        self._emit(Change("layers"))

    def _set_content(self, layers: list[Layer], mask: np.ndarray, active: int) -> None:
        self.layers = list(layers)
        self.mask = mask
        self.height, self.width = mask.shape
        self.active_index = active
        self.selection = None
        self._emit(Change("size"))
