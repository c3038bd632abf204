"""Tools that compute a selection from the picture: object select (GrabCut) and magic wand.

The pixel work is Qt-free in :mod:`studio.document.select_ops`; these classes turn pointer
events into its calls and write the result into the mask as one undo step, combined by the
same modes as the other selection tools (Shift adds, Alt or Ctrl subtracts, both intersect).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPainterPath, QPolygonF
from PySide6.QtWidgets import QApplication

from studio.document import select_ops, shapes
from studio.document.shapes import Mode
from studio.geometry import Rect
from studio.ui.tools import ALT, CTRL, Tool, _path, _snap, mode_for

if TYPE_CHECKING:
    from studio.ui.tools import ToolBox


def _points(points) -> list[QPointF]:
    return [QPointF(x, y) for x, y in points]


def step_name(tool_name: str, mode: Mode) -> str:
    """History entry of a computed selection: the tool's name, and the mode unless replace."""
    return tool_name if mode == Mode.REPLACE else f"{tool_name} ({mode.value})"


class ObjectSelectTool(Tool):
    """Drag a box around an object: GrabCut finds it and its outline shows. Then strokes refine
    it (a plain drag marks the object, Alt or Ctrl marks background) and it is found again.
    Enter, the panel's Apply button, or anything that finishes the tool writes it into the
    mask as one undo step (by the mode chosen when the box was drawn); Esc drops it."""

    HINT_PX = 5.0  # radius of a refine stroke, in screen pixels

    def __init__(self, box: ToolBox) -> None:
        super().__init__(box)
        self.mode = Mode.REPLACE
        self.rect: Rect | None = None  # the box, once drawn
        self.result: np.ndarray | None = None  # float32 HxW, the object found
        self._image: np.ndarray | None = None  # the picture the box was drawn on
        self._hints: np.ndarray | None = None
        self._start: QPointF | None = None  # dragging the box
        self._stroke: list[tuple[float, float]] = []
        self._stroke_value = select_ops.HINT_FOREGROUND

    @property
    def pending(self) -> bool:
        return self.result is not None

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        if self.box.document() is None:
            return
        if self.rect is None:
            self._start = _snap(pos)
            self.mode = mode_for(modifiers, self.box.mode)
            return
        removing = bool(modifiers & (ALT | CTRL))
        self._stroke_value = select_ops.HINT_BACKGROUND if removing else select_ops.HINT_FOREGROUND
        self._stroke = [(pos.x(), pos.y())]
        self._show()

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        if self._start is not None:
            end = _snap(pos)
            corners = shapes.rectangle(self._start.x(), self._start.y(), end.x(), end.y())
            self.box.canvas.set_outline(_path(corners, closed=True))
        elif self._stroke:
            self._stroke.append((pos.x(), pos.y()))
            self._show()

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        doc = self.box.document()
        if self._start is not None:
            start, self._start = self._start, None
            end = _snap(pos)
            x0, x1 = sorted((int(start.x()), int(end.x())))
            y0, y1 = sorted((int(start.y()), int(end.y())))
            rect = Rect.from_edges(x0, y0, x1, y1).intersect(doc.bounds) if doc else None
            if rect is None or rect.w < 2 or rect.h < 2:
                self.box.canvas.set_outline(None)
                return
            self.rect = rect
            self._image = doc.composite()
            self._hints = np.zeros((doc.height, doc.width), np.uint8)
            self._solve()
        elif self._stroke and self._hints is not None:
            stroke, self._stroke = self._stroke, []
            radius = self.HINT_PX / max(self.box.canvas.zoom, 1e-6)
            select_ops.paint_hint(self._hints, stroke, radius, self._stroke_value)
            self._solve()

    def _solve(self) -> None:
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.result = select_ops.object_mask(self._image, self.rect, self._hints)
        finally:
            QApplication.restoreOverrideCursor()
        self._show()
        self.box.selection_pending.emit(True)

    def _show(self) -> None:
        """The box, the object's outline, and the stroke being drawn."""
        path = QPainterPath()
        if self.rect is not None:
            r = self.rect
            path.addPolygon(QPolygonF(_points(shapes.rectangle(r.x, r.y, r.right, r.bottom))))
            path.closeSubpath()
        if self.result is not None:
            for poly in select_ops.outline_polygons(self.result):
                path.addPolygon(QPolygonF(_points(poly.tolist())))
                path.closeSubpath()
        if len(self._stroke) > 1:
            path.addPolygon(QPolygonF(_points(self._stroke)))
        self.box.canvas.set_outline(path)

    def key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.pending:
            self.apply()
            return True
        return False

    def apply(self) -> None:
        """Write the object into the mask (one undo step) and start over."""
        result, mode, doc = self.result, self.mode, self.box.document()
        self._reset()
        if result is not None and doc is not None and result.shape == doc.mask.shape:
            select_ops.apply_selection(doc, result, mode, step_name("Object select", mode))

    def finish(self) -> None:
        self.apply()

    def cancel(self) -> bool:
        had = self.rect is not None or self._start is not None
        self._reset()
        return had

    def _reset(self) -> None:
        had = self.result is not None
        self.rect = self.result = self._image = self._hints = self._start = None
        self._stroke = []
        self.box.canvas.set_outline(None)
        if had:
            self.box.selection_pending.emit(False)


class MagicWandTool(Tool):
    """Click: select the colours near the clicked pixel's (tolerance and contiguous from the
    tool box), combined with the mask by the mode; one undo step per click."""

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        doc = self.box.document()
        if doc is None:
            return
        x, y = math.floor(pos.x()), math.floor(pos.y())
        if not (0 <= x < doc.width and 0 <= y < doc.height):
            return
        mode = mode_for(modifiers, self.box.mode)
        cover = select_ops.color_range_mask(
            doc.composite(), (x, y), self.box.wand_tolerance, self.box.wand_contiguous
        )
        select_ops.apply_selection(doc, cover, mode, step_name("Magic wand", mode))
