"""The canvas: a QGraphicsView showing the document, its mask and the engine's preview.

The view keeps render caches only (a premultiplied QImage of the composite and one of the mask
overlay, each mipmapped for zoomed-out views), refreshed for the dirty rectangles the document
reports. Navigation follows GIMP/Krita/Photoshop: Ctrl+wheel or pinch zooms about the pointer,
the wheel scrolls (Shift+wheel sideways), Space+drag (whatever has the keyboard focus:
:mod:`studio.ui.space_pan`) or the middle button pans, and Tab held
shows the original image. Pointer and tablet input go to the active tool in document pixels.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView

from studio.document import Change, Document
from studio.geometry import Rect
from studio.ui.band_queue import BAND_PIXELS, BandQueue
from studio.ui.mipmap import MipImageItem
from studio.ui.qimage import blank_canvas_image, image_view, write_region
from studio.ui.space_pan import SpacePanFilter

ZOOM_MIN, ZOOM_MAX = 1 / 64, 64.0
#: bands this large come from a progressive redraw: their mip levels are updated at once
BIG_BAND = BAND_PIXELS // 2
#: the hardness ring of the brush cursor shows only when it is this many screen px from the outline
CURSOR_RING_GAP = 3.0


class Tool(Protocol):
    """Receives pointer events in document pixel coordinates (see studio.ui.tools)."""

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None: ...

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None: ...

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None: ...


class OutlineItem(QGraphicsItem):
    """A path drawn with a 1 px black-and-white outline whatever the zoom (tool feedback)."""

    def __init__(self) -> None:
        super().__init__()
        self.path = QPainterPath()
        self.setZValue(10)

    def set_path(self, path: QPainterPath) -> None:
        self.prepareGeometryChange()
        self.path = path
        self.update()

    def boundingRect(self) -> QRectF:
        return self.path.boundingRect().adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        dark = QPen(QColor(0, 0, 0, 200), 3)
        dark.setCosmetic(True)
        light = QPen(QColor(255, 255, 255), 1)
        light.setCosmetic(True)
        for pen in (dark, light):
            painter.setPen(pen)
            painter.drawPath(self.path)


class CanvasView(QGraphicsView):
    """Shows one document; emits ``zoom_changed`` and ``cursor_moved`` for the status bar."""

    zoom_changed = Signal(float)
    cursor_moved = Signal(int, int)
    original_held = Signal(bool)  # Tab pressed / released
    tool_key = Signal(int)  # a key the active tool may want (Enter, Backspace)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(45, 45, 48))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window handles file drops
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)
        self.document: Document | None = None
        self.tool: Tool | None = None
        self.compare = None  # the CompareView, which may claim a press to drag its divider
        self.doc_item = MipImageItem(blank_canvas_image(1, 1), checker=True)
        self._checker = self.doc_item.checker
        self.mask_item = MipImageItem(blank_canvas_image(1, 1))
        self.mask_item.setOpacity(0.5)
        self.mask_item.setZValue(1)
        self.preview_item = MipImageItem(blank_canvas_image(1, 1))
        self.preview_item.setZValue(2)
        self.preview_item.setVisible(False)
        self.outline = OutlineItem()
        self.cursor_item = OutlineItem()
        self.cursor_item.setZValue(11)
        for item in (self.doc_item, self.mask_item, self.preview_item):
            self.scene().addItem(item)
        self.scene().addItem(self.outline)
        self.scene().addItem(self.cursor_item)
        self.mask_color = QColor(255, 40, 40)
        self.cursor_radius = 0.0  # brush outline radius in document pixels (0 = none)
        self.cursor_hardness = 1.0  # where the brush's falloff starts, as a fraction of radius
        self.redraw = BandQueue(self._visible_rect, self)
        self.redraw.register("doc", self._composite_band)
        self.redraw.register("mask", self._mask_band)
        self._unsubscribe = None
        self._space_down = False
        self._space_filter = SpacePanFilter(self)
        self._panning = False
        self._pan_last = QPointF()
        self._tablet_down = False
        self._last_doc_pos = QPointF(-1e9, -1e9)

    # -- document binding -------------------------------------------------------------------------
    def set_document(self, doc: Document) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        self.document = doc
        self._unsubscribe = doc.subscribe(self._on_change)
        self._rebuild()
        self.fit()

    def _rebuild(self) -> None:
        doc = self.document
        assert doc is not None
        self.redraw.clear()
        self.doc_item.set_image(blank_canvas_image(doc.width, doc.height))
        self.mask_item.set_image(blank_canvas_image(doc.width, doc.height))
        self.scene().setSceneRect(QRectF(0, 0, doc.width, doc.height))
        self.refresh(doc.bounds)
        self.refresh_mask(doc.bounds)

    def _on_change(self, change: Change) -> None:
        if change.kind == "size":
            self._rebuild()
        elif change.kind == "layers":
            self.refresh(self.document.bounds if change.rect is None else change.rect)
        elif change.kind == "pixels":
            self.refresh(change.rect or self.document.bounds)
        elif change.kind == "mask":
            self.refresh_mask(change.rect or self.document.bounds)

    def refresh(self, rect: Rect) -> None:
        """Re-composite ``rect`` into the render cache and schedule its repaint (at once when
        small, band by band from the event loop when large: see :mod:`band_queue`).

        The transparency checkerboard is drawn only once some pixel is not opaque (it costs
        as much as the image itself to draw); a full refresh re-decides.
        """
        rect = rect.intersect(self.document.bounds)
        if rect.is_empty():
            return
        if rect == self.document.bounds:
            self.doc_item.checker = None
        self.redraw.submit("doc", rect)

    def _composite_band(self, band: Rect) -> None:
        pixels = self.document.composite(band)
        if self.doc_item.checker is None and pixels[:, :, 3].min() < 255:
            self.doc_item.checker = self._checker
        write_region(self.doc_item.image, band.x, band.y, pixels)
        self.doc_item.mark_dirty(band, eager=band.area >= BIG_BAND)

    def refresh_mask(self, rect: Rect) -> None:
        rect = rect.intersect(self.document.bounds)
        if rect.is_empty():
            return
        if self.mask_item.empty and not self.document.mask[rect.slices].any():
            return  # nothing drawn, nothing to draw: skip the work (and the mipmap)
        self.redraw.submit("mask", rect)

    def _mask_band(self, band: Rect) -> None:
        c = self.mask_color
        colour = np.array([c.blue(), c.green(), c.red()], np.uint16)
        m = self.document.mask[band.slices]
        view = image_view(self.mask_item.image)[band.slices]
        if not m.any():
            view[:] = 0
        else:
            a = np.rint(m * 255.0).astype(np.uint16)
            view[:, :, :3] = (a[:, :, None] * colour + 127) // 255
            view[:, :, 3] = a
        self.mask_item.mark_dirty(band, eager=band.area >= BIG_BAND)

    def _visible_rect(self) -> Rect:
        """The document pixels the viewport shows now."""
        r = self.mapToScene(self.viewport().rect()).boundingRect().toAlignedRect()
        return Rect(r.x(), r.y(), r.width(), r.height())

    # -- mask overlay -----------------------------------------------------------------------------
    def set_mask_color(self, color: QColor) -> None:
        self.mask_color = QColor(color)
        if self.document is not None:
            self.refresh_mask(self.document.bounds)

    def set_mask_opacity(self, opacity: float) -> None:
        self.mask_item.setOpacity(opacity)

    def set_mask_visible(self, visible: bool) -> None:
        self.mask_item.setVisible(visible)

    # -- preview overlay --------------------------------------------------------------------------
    def show_preview(self, image: QImage, display_rect: QRectF, blank: bool = False) -> None:
        """Overlay ``image`` stretched over ``display_rect`` (document coordinates); ``blank``:
        still transparent, to be filled through :meth:`update_preview`."""
        self.preview_item.set_image(
            image, (round(display_rect.width()), round(display_rect.height())), blank=blank
        )
        self.preview_item.setPos(display_rect.topLeft())
        self.preview_item.setVisible(True)

    def update_preview(self, image_rect: QRectF) -> None:
        """Repaint the part of the preview covering ``image_rect`` (preview image pixels)."""
        r = image_rect.toAlignedRect()
        self.preview_item.mark_dirty(Rect(r.x(), r.y(), r.width(), r.height()))

    def hide_preview(self) -> None:
        self.preview_item.setVisible(False)
        self.preview_item.set_image(blank_canvas_image(1, 1))

    # -- tool feedback ----------------------------------------------------------------------------
    def set_outline(self, path: QPainterPath | None) -> None:
        """Show a selection outline (document coordinates), or none."""
        self.outline.set_path(path or QPainterPath())

    def set_cursor_radius(self, radius: float, hardness: float = 1.0) -> None:
        """Draw a circle of ``radius`` document pixels around the pointer (0 hides it), and a
        second one where a soft brush starts to fade (``hardness * radius``)."""
        self.cursor_radius = radius
        self.cursor_hardness = hardness
        self._update_cursor(self._last_doc_pos)

    def _update_cursor(self, pos: QPointF) -> None:
        path = QPainterPath()
        if self.cursor_radius > 0 and self.document is not None:
            zoom = max(self.zoom, 1e-6)
            r = max(self.cursor_radius, 0.5 / zoom)
            path.addEllipse(pos, r, r)
            inner = self.cursor_hardness * self.cursor_radius
            if (r - inner) * zoom >= CURSOR_RING_GAP and inner * zoom >= CURSOR_RING_GAP:
                path.addEllipse(pos, inner, inner)
        self.cursor_item.set_path(path)

    # -- zoom and pan -----------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, ZOOM_MIN), ZOOM_MAX)
        self.setTransform(self.transform().fromScale(zoom, zoom))
        self.zoom_changed.emit(zoom)
        self._update_cursor(self._last_doc_pos)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def fit(self) -> None:
        if self.document is None:
            return
        self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.set_zoom(self.zoom)  # clamp and announce

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def view_state(self) -> tuple[QPointF, float]:
        """(document point at the centre of the viewport, zoom), for :meth:`restore_view`."""
        to_scene, _ = self.viewportTransform().inverted()
        return to_scene.map(QRectF(self.viewport().rect()).center()), self.zoom

    def restore_view(
        self,
        state: tuple[QPointF, float],
        scale_x: float = 1.0,
        scale_y: float = 1.0,
        offset_x: float = 0.0,
        offset_y: float = 0.0,
    ) -> None:
        """Show the same part of the picture, at the same size on screen, after the document
        was resized: a point (x, y) of ``state`` is now at (x * scale_x + offset_x, ...)."""
        centre, zoom = state
        self.set_zoom(zoom / math.sqrt(scale_x * scale_y))
        self.centerOn(QPointF(centre.x() * scale_x + offset_x, centre.y() * scale_y + offset_y))

    def wheelEvent(self, event) -> None:
        mods = event.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            delta = event.angleDelta().y() or event.angleDelta().x()
            if delta:
                self.zoom_by(1.0015**delta)
            event.accept()
            return
        if mods & Qt.KeyboardModifier.ShiftModifier and event.angleDelta().x() == 0:
            bar = self.horizontalScrollBar()
            bar.setValue(bar.value() - event.angleDelta().y())
            event.accept()
            return
        super().wheelEvent(event)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the view content by (dx, dy) screen pixels."""
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(dx))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(dy))

    # -- events -----------------------------------------------------------------------------------
    def viewportEvent(self, event) -> bool:
        t = event.type()
        if t in (QEvent.Type.TabletPress, QEvent.Type.TabletMove, QEvent.Type.TabletRelease):
            self._tablet_event(event)
            return True
        if (
            t == QEvent.Type.NativeGesture
            and event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture
        ):
            self.zoom_by(1.0 + event.value())
            event.accept()
            return True
        if t == QEvent.Type.Gesture:
            pinch = event.gesture(Qt.GestureType.PinchGesture)
            if pinch is not None:
                self.zoom_by(pinch.scaleFactor())
                event.accept()
                return True
        return super().viewportEvent(event)

    def _tablet_event(self, event) -> None:
        t = event.type()
        pos = self.doc_pos(event)
        pressure = float(event.pressure())
        mods = event.modifiers()
        event.accept()
        self._moved_to(pos)
        if self.tool is None or self._panning:
            return
        if t == QEvent.Type.TabletPress and not self._space_down:
            self._tablet_down = True
            self.tool.press(pos, pressure, mods)
        elif t == QEvent.Type.TabletMove and self._tablet_down:
            self.tool.move(pos, pressure, mods)
        elif t == QEvent.Type.TabletRelease and self._tablet_down:
            self._tablet_down = False
            self.tool.release(pos, mods)
        elif t == QEvent.Type.TabletMove and hasattr(self.tool, "hover"):
            self.tool.hover(pos)

    def doc_pos(self, event) -> QPointF:
        """Document coordinates of a pointer event (sub-pixel)."""
        origin = self.mapToScene(0, 0)
        t = self.transform()
        p = event.position()
        return QPointF(origin.x() + p.x() / t.m11(), origin.y() + p.y() / t.m22())

    def focusNextPrevChild(self, next_: bool) -> bool:
        return False  # Tab is the "show original" key on the canvas

    @property
    def space_held(self) -> bool:
        return self._space_down

    def set_space_held(self, held: bool) -> None:
        """Space held arms panning: a left-button drag scrolls the view instead of painting
        (the keys reach this through :class:`SpacePanFilter`, whatever has the focus)."""
        if held == self._space_down:
            return
        self._space_down = held
        if self._panning:
            return  # the closed hand stays until the button is released
        if held:
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.viewport().unsetCursor()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key == Qt.Key.Key_Tab:
            if not event.isAutoRepeat():
                self.original_held.emit(True)
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            self.tool_key.emit(int(key))
            handler = getattr(self.tool, "key", None)
            if handler is not None and handler(int(key)):
                return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        key = event.key()
        if key == Qt.Key.Key_Tab:
            if not event.isAutoRepeat():
                self.original_held.emit(False)
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._panning = True
            self._pan_last = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if self._tablet_down or button != Qt.MouseButton.LeftButton:
            return
        pos = self.doc_pos(event)
        if self.compare is not None and self.compare.try_press(pos):
            return
        if self.tool is not None:
            self.tool.press(pos, 1.0, event.modifiers())

    def mouseMoveEvent(self, event) -> None:
        pos = self.doc_pos(event)
        self._moved_to(pos)
        if self._panning:
            delta = event.position() - self._pan_last
            self._pan_last = event.position()
            self.pan_by(delta.x(), delta.y())
            return
        if self.compare is not None and self.compare.drag(pos):
            return
        if self._tablet_down or self.tool is None:
            return
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.tool.move(pos, 1.0, event.modifiers())
        elif hasattr(self.tool, "hover"):
            self.tool.hover(pos)

    def mouseReleaseEvent(self, event) -> None:
        if self._panning and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._panning = False
            if self._space_down:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            return
        if self._tablet_down or event.button() != Qt.MouseButton.LeftButton:
            return
        if self.compare is not None and self.compare.release():
            return
        if self.tool is not None:
            self.tool.release(self.doc_pos(event), event.modifiers())

    def mouseDoubleClickEvent(self, event) -> None:
        if self.tool is not None and hasattr(self.tool, "double_click"):
            self.tool.double_click(self.doc_pos(event))
            return
        self.mousePressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for child in self.viewport().children():
            place = getattr(child, "place", None)
            if callable(place) and child.isVisible():
                place()

    def leaveEvent(self, event) -> None:
        self.cursor_item.set_path(QPainterPath())
        super().leaveEvent(event)

    def _moved_to(self, pos: QPointF) -> None:
        self._last_doc_pos = pos
        self.cursor_moved.emit(int(np.floor(pos.x())), int(np.floor(pos.y())))
        self._update_cursor(pos)
