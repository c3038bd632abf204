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
    ComputedPatch,
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
from studio.document.layer import Layer, composite, over, to_rgba
from studio.geometry import Rect

#: Largest document Studio edits (the same limit as opening a file): a layer of this size is
#: 1 GiB of RGBA pixels and the mask another 1 GiB of float32.
MAX_PIXELS = 16384 * 16384


def check_size(width: int, height: int) -> None:
    """Raise ValueError with the limit stated when a document would be empty or too large."""
    if width <= 0 or height <= 0:
        raise ValueError(f"document size must be positive, got {width}x{height}")
    if width * height > MAX_PIXELS:
        side = int(MAX_PIXELS**0.5)
        raise ValueError(
            f"{width}x{height} is {width * height / 1e6:.0f} megapixels; Studio edits images up "
            f"to {MAX_PIXELS / 1e6:.0f} megapixels ({side}x{side})"
        )


def changed_bbox(before: np.ndarray, after: np.ndarray) -> Rect:
    """Bounding box of the pixels that differ between two equally shaped arrays (maybe empty)."""
    diff = before != after
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return Rect(0, 0, 0, 0)
    cols = np.flatnonzero(diff[rows[0] : rows[-1] + 1].any(axis=0))
    return Rect.from_edges(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


@dataclass(frozen=True)
class Change:
    """What changed. ``kind`` is one of:

    pixels, mask (with ``rect`` and ``target``); layers (structure, visibility or opacity: the
    composite must be redrawn within ``rect``, the footprint of the layer involved, or
    everywhere when ``rect`` is None); layer_name (a rename only); active (another active
    layer); size (everything replaced); history; selection.
    """

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
        check_size(width, height)
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
        #: the image as opened (RGB or RGBA uint8, read-only), for compare and "show original"
        self.original: np.ndarray | None = None
        self._listeners: list[Callable[[Change], None]] = []
        self._target_revisions: dict[Target, int] = {}
        self._clean_step: Step | None = None

    @classmethod
    def from_image(cls, pixels: np.ndarray, name: str = "Background", **kwargs: Any) -> Document:
        """A one-layer document from HxWx{3,4} uint8 pixels (copied)."""
        doc = cls(int(pixels.shape[1]), int(pixels.shape[0]), **kwargs)
        doc.layers.append(Layer.from_rgb(pixels, name))
        doc.original = to_rgba(pixels) if pixels.ndim == 2 else np.array(pixels, copy=True)
        doc.original.flags.writeable = False
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
        self._target_revisions[target] = self.revision

    def changed_since(self, target: Target, revision: int) -> bool:
        """Whether pixels of ``target`` changed after ``revision`` (or the layer is gone)."""
        if target != MASK and not any(layer.id == target for layer in self.layers):
            return True
        return self._target_revisions.get(target, -1) > revision

    # -- saved state ---------------------------------------------------------------------------
    def mark_clean(self) -> None:
        """Remember the current state as saved (after open or export)."""
        self._clean_step = self.history.current_step()

    def mark_unsaved(self) -> None:
        """Treat the current state as not saved anywhere (e.g. work restored after a crash)."""
        self._clean_step = _UNSAVED

    @property
    def is_modified(self) -> bool:
        """True when the applied steps differ from those at the last :meth:`mark_clean`."""
        return self.history.current_step() is not self._clean_step

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
        """Replace the whole mask (float in [0, 1], HxW) as one undo step.

        Only the bounding box of the pixels that change is kept in the history.
        """
        if mask.shape != self.mask.shape:
            raise ValueError(
                f"mask is {mask.shape[1]}x{mask.shape[0]}, document is {self.width}x{self.height}"
            )
        mask = np.clip(mask, 0, 1).astype(np.float32, copy=False)
        rect = changed_bbox(self.mask, mask)
        if rect.is_empty():
            return None
        return self.apply_pixels(MASK, rect, mask[rect.slices], name)

    def fill_mask(self, value: float, name: str) -> Step | None:
        """Set every mask pixel to ``value`` (0 clears, 1 selects all) as one undo step.

        The step keeps only the old pixels that differ; redo refills the constant.
        """
        value = float(np.clip(value, 0.0, 1.0))
        rect = changed_bbox(self.mask, np.float32(value))
        if rect.is_empty():
            return None
        command = ComputedPatch(MASK, rect, self.mask[rect.slices].copy(), _Constant(value))
        command.redo(self)
        step = Step(name, [command])
        self.history.push(step)
        return step

    def invert_mask(self, name: str = "Invert mask") -> Step:
        """1 - mask everywhere, as one step holding the old mask only."""
        rect = self.bounds
        command = ComputedPatch(MASK, rect, self.mask.copy(), _invert)
        command.redo(self)
        step = Step(name, [command])
        self.history.push(step)
        return step

    def land_pixels(
        self, rgba: np.ndarray, rect: Rect, name: str, *, as_new_layer: bool
    ) -> Layer | None:
        """Put an engine result (straight RGBA uint8 covering ``rect``) into the document.

        ``as_new_layer``: a new layer above the active one, transparent outside ``rect``;
        otherwise the result is blended (alpha 'over') into the active layer. One undo step.
        Returns the new layer, or None when merged.
        """
        if rgba.shape[:2] != (rect.h, rect.w):
            raise ValueError(f"pixels {rgba.shape[:2]} do not fit rect {rect}")
        clipped = rect.intersect(self.bounds)
        if clipped.is_empty():
            return None
        src = rgba[clipped.translate(-rect.x, -rect.y).slices]
        if as_new_layer:
            layer = Layer.blank(self.width, self.height, name)
            layer.pixels[clipped.slices] = src
            return self.add_layer(layer, self.active_index + 1, name)
        target = self.active_layer
        self.apply_pixels(target.id, clipped, over(target.pixels[clipped.slices], src), name)
        return None

    # -- undo --------------------------------------------------------------------------------
    def undo(self) -> Step | None:
        return self.history.undo(self)

    def redo(self) -> Step | None:
        return self.history.redo(self)

    def jump_to(self, position: int) -> None:
        """Undo or redo until ``position`` steps of the history are applied."""
        self.history.jump_to(self, position)

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

    def set_layer_props(
        self,
        layer_id: int,
        step_name: str = "Layer properties",
        /,
        *,
        before: dict[str, Any] | None = None,
        **props: Any,
    ) -> None:
        """Set name / visible / opacity as one step named ``step_name`` (positional, so that
        ``name=`` renames). ``before``: the values to restore on undo when the layer was already
        changed live by :meth:`preview_layer_props`."""
        layer = self.layer_by_id(layer_id)
        if "opacity" in props and not 0.0 <= float(props["opacity"]) <= 1.0:
            raise ValueError("layer opacity must be within [0, 1]")
        before = before or {k: getattr(layer, k) for k in props}
        if before == props:
            return
        command = SetLayerProps(layer_id, before, dict(props))
        command.redo(self)
        self.history.push(Step(step_name, [command]))

    def preview_layer_props(self, layer_id: int, **props: Any) -> None:
        """Change layer properties live (e.g. while an opacity slider moves) with no undo step;
        finish with :meth:`set_layer_props` passing the original values as ``before``."""
        self._set_props(layer_id, props)

    def rename_layer(self, layer_id: int, name: str) -> None:
        name = name.strip()
        if name and name != self.layer_by_id(layer_id).name:
            self.set_layer_props(layer_id, "Rename layer", name=name)

    def duplicate_layer(self, layer_id: int) -> Layer:
        """A copy of the layer placed right above it (and made active)."""
        source = self.layer_by_id(layer_id)
        copy = source.copy(f"{source.name} copy")
        return self.add_layer(copy, self.index_of(layer_id) + 1, f"Duplicate {source.name}")

    def merge_down(self, layer_id: int) -> Layer:
        """Flatten a layer into the one below (which keeps its name, visibility and opacity).

        The upper layer contributes with its own opacity if visible. One undo step.
        """
        index = self.index_of(layer_id)
        if index == 0:
            raise ValueError("the bottom layer has nothing below to merge into")
        upper, lower = self.layers[index], self.layers[index - 1]
        commands: list[Any] = []
        if upper.visible and upper.opacity > 0:
            rect = _alpha_bbox(upper.pixels)
            if not rect.is_empty():
                old = lower.pixels[rect.slices].copy()
                new = over(old, upper.pixels[rect.slices], upper.opacity)
                commands.append(PixelPatch(lower.id, [TilePatch(rect, old, new)]))
        commands.append(RemoveLayer(index, upper))
        step = Step(f"Merge {upper.name} down", commands)
        step.redo(self)
        self.active_index = self.index_of(lower.id)
        self.history.push(step)
        return lower

    def set_active(self, index: int) -> None:
        """Choose the layer that tools paint on (not an undo step)."""
        index = max(0, min(index, len(self.layers) - 1))
        if index != self.active_index:
            self.active_index = index
            self._emit(Change("active"))

    def replace_content(self, layers: list[Layer], mask: np.ndarray, name: str) -> None:
        """Swap all layers and the mask, possibly at a new size, as one undo step."""
        before = (list(self.layers), self.mask, self.active_index)
        command = ReplaceContent(before, (layers, mask, min(self.active_index, len(layers) - 1)))
        command.redo(self)
        self.history.push(Step(name, [command]))

    # -- primitives used by commands (no history) ----------------------------------------------
    # A layer change can alter the composite only where that layer has pixels (a moved layer
    # changes order only against what it overlaps), so each Change carries that footprint:
    # adding an empty layer at 8k costs no recomposite, hiding a sticker only its box.
    def _insert_layer_at(self, index: int, layer: Layer) -> None:
        self.layers.insert(index, layer)
        self.active_index = index
        self._emit(Change("layers", rect=_footprint(layer)))

    def _remove_layer_at(self, index: int) -> None:
        layer = self.layers.pop(index)
        self.active_index = min(self.active_index, len(self.layers) - 1)
        self._emit(Change("layers", rect=_footprint(layer)))

    def _move_layer(self, source: int, dest: int) -> None:
        layer = self.layers.pop(source)
        self.layers.insert(dest, layer)
        self.active_index = dest
        self._emit(Change("layers", rect=_footprint(layer)))

    def _set_props(self, layer_id: int, props: dict[str, Any]) -> None:
        layer = self.layer_by_id(layer_id)
        shown_before = layer.visible and layer.opacity > 0
        for key, value in props.items():
            setattr(layer, key, value)
        if set(props) == {"name"}:
            self._emit(Change("layer_name"))
            return
        shown = layer.visible and layer.opacity > 0
        rect = _footprint(layer) if shown or shown_before else Rect(0, 0, 0, 0)
        self._emit(Change("layers", rect=rect))

    def _set_content(self, layers: list[Layer], mask: np.ndarray, active: int) -> None:
        self.layers = list(layers)
        self.mask = mask
        self.height, self.width = mask.shape
        self.active_index = active
        self.selection = None
        self._emit(Change("size"))


def _alpha_bbox(pixels: np.ndarray) -> Rect:
    """Bounding box of the pixels with non-zero alpha.

    Scans RGBA as little-endian uint32 words (alpha is the top byte, so ``word > 0xFFFFFF``
    means alpha > 0) with max-reductions: no full-size temporary, ~10x faster at 8k than
    comparing the strided alpha plane.
    """
    h, w = pixels.shape[:2]
    words = np.ascontiguousarray(pixels).view(np.uint32).reshape(h, w)
    rows = np.flatnonzero(words.max(axis=1) > 0x00FFFFFF)
    if rows.size == 0:
        return Rect(0, 0, 0, 0)
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(words[top:bottom].max(axis=0) > 0x00FFFFFF)
    return Rect.from_edges(int(cols[0]), top, int(cols[-1]) + 1, bottom)


def _footprint(layer: Layer) -> Rect:
    """Where ``layer`` has pixels: its alpha bounding box (the whole layer when its four corners
    are set, found without a scan)."""
    alpha = layer.pixels[:, :, 3]
    if alpha[0, 0] and alpha[0, -1] and alpha[-1, 0] and alpha[-1, -1]:
        return Rect(0, 0, layer.width, layer.height)
    return _alpha_bbox(layer.pixels)


#: a history position no document is ever at, so ``is_modified`` stays True until saved
_UNSAVED: Any = Step("unsaved", [])


class _Constant:
    def __init__(self, value: float) -> None:
        self.value = np.float32(value)

    def __call__(self, before: np.ndarray) -> np.ndarray:
        return np.full_like(before, self.value)


def _invert(before: np.ndarray) -> np.ndarray:
    return np.float32(1.0) - before
