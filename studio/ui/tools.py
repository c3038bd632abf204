"""Canvas tools and the tool box that owns the current tool and brush settings.

Tools receive pointer events in document pixels from :class:`studio.ui.canvas.CanvasView` and
edit the document only through its API (a stroke, a shape, a fill), so every use is one undo
step. Keys (set up by the main window): B brush, E eraser, M mask brush, X swap paint/erase,
[ and ] brush size; Alt+click with a paint brush picks a colour. Selection tools replace the
mask; Shift adds, Alt (or Ctrl) subtracts, Shift+Alt intersects. The object-select and magic-wand
tools compute their selection from the picture (:mod:`studio.document.select_ops`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QPainterPath, QPolygonF

from studio.document import MASK, BrushSettings, Document, Stroke, mask_ops, shapes
from studio.document.shapes import Mode
from studio.geometry import Rect
from studio.settings import Settings
from studio.ui.canvas import CanvasView

BRUSH, ERASER, MASK_BRUSH, MASK_ERASER = "brush", "eraser", "mask_brush", "mask_eraser"
RECT, ELLIPSE, LASSO, POLYGON, MASK_FILL = "rect", "ellipse", "lasso", "polygon", "mask_fill"
OBJECT_SELECT, MAGIC_WAND = "object_select", "magic_wand"
TOOL_NAMES = {
    BRUSH: "Brush",
    ERASER: "Eraser",
    MASK_BRUSH: "Mask brush",
    MASK_ERASER: "Mask eraser",
    RECT: "Rectangle select",
    ELLIPSE: "Ellipse select",
    LASSO: "Lasso select",
    POLYGON: "Polygon select",
    MASK_FILL: "Mask fill",
    OBJECT_SELECT: "Object select",
    MAGIC_WAND: "Magic wand",
}
SWAP = {BRUSH: ERASER, ERASER: BRUSH, MASK_BRUSH: MASK_ERASER, MASK_ERASER: MASK_BRUSH}
SIZE_MIN, SIZE_MAX = 1.0, 1000.0
ALT = Qt.KeyboardModifier.AltModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier
#: the wand's tolerance (CIE76 colour difference, 0-100) until the panel changes it
WAND_TOLERANCE = 20.0


def mode_for(modifiers: Qt.KeyboardModifier, default: Mode) -> Mode:
    """Shift adds, Alt subtracts, both intersect; otherwise the tool box's chosen mode.

    Ctrl works as Alt (GIMP's key, and window managers that move windows on Alt+drag)."""
    shift, alt = bool(modifiers & SHIFT), bool(modifiers & (ALT | CTRL))
    if shift and alt:
        return Mode.INTERSECT
    if shift:
        return Mode.ADD
    if alt:
        return Mode.SUBTRACT
    return default


class Tool:
    """Base: ignores everything. Positions are document pixels (floats)."""

    def __init__(self, box: ToolBox) -> None:
        self.box = box

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        pass

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        pass

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        pass

    def key(self, key: int) -> bool:
        return False

    def finish(self) -> None:
        """Commit anything in progress (before undo, accept, open...)."""

    def cancel(self) -> bool:
        """Drop anything in progress; True if there was something."""
        return False

    def radius(self) -> float:
        return 0.0

    def hardness(self) -> float:
        return 1.0


class BrushTool(Tool):
    """Paints or erases on the active layer, or on the mask; one stroke = one undo step."""

    def __init__(self, box: ToolBox, tool_id: str) -> None:
        super().__init__(box)
        self.tool_id = tool_id
        self.on_mask = tool_id in (MASK_BRUSH, MASK_ERASER)
        self.erase = tool_id in (ERASER, MASK_ERASER)
        self.stroke: Stroke | None = None
        self._picking = False
        self._pressure = 1.0

    def brush(self) -> BrushSettings:
        base = self.box.settings.mask_brush if self.on_mask else self.box.settings.paint_brush
        return replace(base, erase=self.erase)

    def radius(self) -> float:
        return self.brush().size / 2

    def hardness(self) -> float:
        return self.brush().hardness

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        doc = self.box.document()
        if doc is None:
            return
        self.finish()
        if modifiers & ALT and not self.on_mask:
            self._picking = True
            self.box.pick_color(pos)
            return
        target = MASK if self.on_mask else doc.active_layer.id
        self.stroke = Stroke(doc, target, self.brush(), TOOL_NAMES[self.tool_id])
        self._pressure = pressure
        self.stroke.move_to(pos.x(), pos.y(), pressure)

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        if self._picking:
            self.box.pick_color(pos)
        elif self.stroke is not None:
            self._pressure = pressure
            self.stroke.line_to(pos.x(), pos.y(), pressure)

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        if self._picking:
            self._picking = False
            return
        if self.stroke is not None:
            self.stroke.line_to(pos.x(), pos.y(), self._pressure)
            self.finish()

    def finish(self) -> None:
        stroke, self.stroke = self.stroke, None
        if stroke is not None:
            stroke.end()

    def cancel(self) -> bool:
        stroke, self.stroke = self.stroke, None
        if stroke is not None:
            stroke.cancel()
            return True
        return False


class ShapeTool(Tool):
    """Rectangle or ellipse selection by dragging between two corners."""

    def __init__(self, box: ToolBox, kind: str) -> None:
        super().__init__(box)
        self.kind = kind
        self.start: QPointF | None = None
        self.mode = Mode.REPLACE

    def points(self, a: QPointF, b: QPointF) -> list[tuple[float, float]]:
        make = shapes.rectangle if self.kind == RECT else shapes.ellipse
        return make(a.x(), a.y(), b.x(), b.y())

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        self.start = _snap(pos) if self.kind == RECT else pos
        self.mode = mode_for(modifiers, self.box.mode)

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        if self.start is not None:
            end = _snap(pos) if self.kind == RECT else pos
            self.box.canvas.set_outline(_path(self.points(self.start, end), closed=True))

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        start, self.start = self.start, None
        self.box.canvas.set_outline(None)
        doc = self.box.document()
        if start is None or doc is None:
            return
        end = _snap(pos) if self.kind == RECT else pos
        if abs(end.x() - start.x()) < 1 or abs(end.y() - start.y()) < 1:
            if self.mode == Mode.REPLACE:  # a click without a drag deselects, as everywhere
                doc.fill_mask(0.0, "Clear mask")
            return
        name = "rectangle" if self.kind == RECT else "ellipse"
        shapes.apply_shape(doc, self.points(start, end), self.mode, name)

    def cancel(self) -> bool:
        had = self.start is not None
        self.start = None
        self.box.canvas.set_outline(None)
        return had


class LassoTool(Tool):
    """Freehand outline while the button is held; closes and applies on release."""

    def __init__(self, box: ToolBox) -> None:
        super().__init__(box)
        self.points: list[tuple[float, float]] = []
        self.mode = Mode.REPLACE

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        self.points = [(pos.x(), pos.y())]
        self.mode = mode_for(modifiers, self.box.mode)

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        if self.points:
            last = self.points[-1]
            if math.hypot(pos.x() - last[0], pos.y() - last[1]) >= 0.5:
                self.points.append((pos.x(), pos.y()))
                self.box.canvas.set_outline(_path(self.points, closed=False))

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        points, self.points = self.points, []
        self.box.canvas.set_outline(None)
        doc = self.box.document()
        if doc is not None and len(points) >= 3:
            shapes.apply_shape(doc, points, self.mode, "lasso")

    def cancel(self) -> bool:
        had = bool(self.points)
        self.points = []
        self.box.canvas.set_outline(None)
        return had


class PolygonTool(Tool):
    """Click corners; double-click, Enter or a click on the first corner closes; Esc cancels;
    Backspace removes the last corner."""

    CLOSE_PX = 8  # screen pixels

    def __init__(self, box: ToolBox) -> None:
        super().__init__(box)
        self.points: list[tuple[float, float]] = []
        self.mode = Mode.REPLACE
        self._hover: QPointF | None = None

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        if not self.points:
            self.mode = mode_for(modifiers, self.box.mode)
        elif len(self.points) >= 3 and self._near_first(pos):
            self.close()
            return
        self.points.append((pos.x(), pos.y()))
        self._show()

    def _near_first(self, pos: QPointF) -> bool:
        fx, fy = self.points[0]
        return math.hypot(pos.x() - fx, pos.y() - fy) * self.box.canvas.zoom <= self.CLOSE_PX

    def hover(self, pos: QPointF) -> None:
        self._hover = pos
        if self.points:
            self._show()

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        self.hover(pos)

    def double_click(self, pos: QPointF) -> None:
        self.close()

    def key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.points:
            self.close()
            return True
        if key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete) and self.points:
            self.points.pop()
            self._show()
            return True
        return False

    def _show(self) -> None:
        pts = list(self.points)
        if self._hover is not None and pts:
            pts.append((self._hover.x(), self._hover.y()))
        self.box.canvas.set_outline(_path(pts, closed=False) if pts else None)

    def close(self) -> None:
        points, self.points = self.points, []
        self.box.canvas.set_outline(None)
        doc = self.box.document()
        if doc is not None and len(points) >= 3:
            shapes.apply_shape(doc, points, self.mode, "polygon")

    def finish(self) -> None:
        self.cancel()

    def cancel(self) -> bool:
        had = bool(self.points)
        self.points = []
        self.box.canvas.set_outline(None)
        return had


class MaskFillTool(Tool):
    """Click inside an outline painted on the mask to fill it (4-connected, below 50 %)."""

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None:
        doc = self.box.document()
        if doc is not None:
            mask_ops.flood_fill_document(doc, math.floor(pos.x()), math.floor(pos.y()))


class ToolBox(QObject):
    """The current tool, the brushes (kept in :class:`Settings`) and the selection mode."""

    tool_changed = Signal(str)
    brush_changed = Signal()
    mode_changed = Signal(str)
    color_picked = Signal(tuple)
    selection_pending = Signal(bool)  # the object-select tool holds a result not yet applied

    def __init__(
        self,
        canvas: CanvasView,
        settings: Settings,
        document: Callable[[], Document | None],
        on_settings_changed: Callable[[], None] = lambda: None,
    ) -> None:
        from studio.ui.select_tools import MagicWandTool, ObjectSelectTool  # they subclass Tool

        super().__init__()
        self.canvas = canvas
        self.settings = settings
        self.document = document
        self._settings_changed = on_settings_changed
        self.mode = Mode(settings.select_mode)
        self.tools: dict[str, Tool] = {
            BRUSH: BrushTool(self, BRUSH),
            ERASER: BrushTool(self, ERASER),
            MASK_BRUSH: BrushTool(self, MASK_BRUSH),
            MASK_ERASER: BrushTool(self, MASK_ERASER),
            RECT: ShapeTool(self, RECT),
            ELLIPSE: ShapeTool(self, ELLIPSE),
            LASSO: LassoTool(self),
            POLYGON: PolygonTool(self),
            MASK_FILL: MaskFillTool(self),
            OBJECT_SELECT: ObjectSelectTool(self),
            MAGIC_WAND: MagicWandTool(self),
        }
        self.wand_tolerance = WAND_TOLERANCE
        self.wand_contiguous = True
        self.current = ""
        self.select(BRUSH)

    @property
    def tool(self) -> Tool:
        return self.tools[self.current]

    def select(self, tool_id: str) -> None:
        if tool_id == self.current:
            return
        if self.current:
            self.tool.finish()
        self.current = tool_id
        self.canvas.tool = self.tool
        self.canvas.set_cursor_radius(self.tool.radius(), self.tool.hardness())
        self.tool_changed.emit(tool_id)

    def swap_erase(self) -> None:
        """X: brush <-> eraser, mask brush <-> mask eraser (from a selection tool: the mask
        brush, since selections edit the mask)."""
        self.select(SWAP.get(self.current, MASK_BRUSH))

    def finish(self) -> None:
        self.tool.finish()

    def cancel(self) -> bool:
        return self.tool.cancel()

    # -- brushes -------------------------------------------------------------------------------
    def brush_group(self) -> str:
        """'mask' when the current tool edits the mask, else 'paint'."""
        return "mask" if self.current in (MASK_BRUSH, MASK_ERASER) else "paint"

    def brush(self, group: str | None = None) -> BrushSettings:
        group = group or self.brush_group()
        return self.settings.mask_brush if group == "mask" else self.settings.paint_brush

    def set_brush(self, group: str | None = None, **changes) -> None:
        group = group or self.brush_group()
        if "size" in changes:
            changes["size"] = float(min(max(changes["size"], SIZE_MIN), SIZE_MAX))
        new = replace(self.brush(group), **changes)
        if new == self.brush(group):
            return
        if group == "mask":
            self.settings.mask_brush = new
        else:
            self.settings.paint_brush = new
        self.canvas.set_cursor_radius(self.tool.radius(), self.tool.hardness())
        self.brush_changed.emit()
        self._settings_changed()

    def scale_brush(self, factor: float) -> None:
        """[ and ]: the size steps by ~20 % (at least 1 px), like Krita and Photoshop."""
        size = self.brush().size
        new = size * factor
        if abs(new - size) < 1:
            new = size + (1 if factor > 1 else -1)
        self.set_brush(size=round(new, 1))

    def set_mode(self, mode: Mode | str) -> None:
        self.mode = Mode(mode)
        self.settings.select_mode = self.mode.value
        self.mode_changed.emit(self.mode.value)
        self._settings_changed()

    def pick_color(self, pos: QPointF) -> None:
        """Set the paint colour from the visible composite under ``pos``."""
        doc = self.document()
        if doc is None:
            return
        x, y = math.floor(pos.x()), math.floor(pos.y())
        if not (0 <= x < doc.width and 0 <= y < doc.height):
            return
        px = doc.composite(Rect(x, y, 1, 1))[0, 0]
        color = tuple(int(v) for v in np.asarray(px[:3]))
        self.set_brush("paint", color=color)
        self.color_picked.emit(color)


def _snap(pos: QPointF) -> QPointF:
    """Rectangle corners land on pixel edges, so a drag selects whole pixels."""
    return QPointF(round(pos.x()), round(pos.y()))


def _path(points, closed: bool) -> QPainterPath:
    path = QPainterPath()
    path.addPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
    if closed:
        path.closeSubpath()
    return path
