"""The canvas: a QGraphicsView showing the document, its mask and the engine's preview.

The view keeps render caches only (a premultiplied QImage of the composite and one of the mask
overlay), refreshed for the dirty rectangles the document reports. Zoom with the wheel, fit and
100 %; pan with the middle button or Space+drag. Pointer input goes to the active tool.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView

from studio.document import Change, Document
from studio.geometry import Rect
from studio.ui.qimage import blank_canvas_image, image_view, write_region

ZOOM_MIN, ZOOM_MAX = 1 / 64, 64.0


class Tool(Protocol):
    """Receives pointer events in document pixel coordinates."""

    def press(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None: ...

    def move(self, pos: QPointF, pressure: float, modifiers: Qt.KeyboardModifier) -> None: ...

    def release(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None: ...


def _checker_brush() -> QBrush:
    tile = QPixmap(16, 16)
    tile.fill(QColor(204, 204, 204))
    p = QPainter(tile)
    p.fillRect(0, 0, 8, 8, QColor(153, 153, 153))
    p.fillRect(8, 8, 8, 8, QColor(153, 153, 153))
    p.end()
    return QBrush(tile)


class ImageItem(QGraphicsItem):
    """Draws a QImage at the origin, optionally scaled to ``display_size`` (w, h)."""

    def __init__(self, image: QImage, checker: bool = False) -> None:
        super().__init__()
        self.image = image
        self.checker = _checker_brush() if checker else None
        self.display_size = (image.width(), image.height())
        self.setCacheMode(QGraphicsItem.CacheMode.NoCache)

    def set_image(self, image: QImage, display_size: tuple[int, int] | None = None) -> None:
        self.prepareGeometryChange()
        self.image = image
        self.display_size = display_size or (image.width(), image.height())
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self.display_size)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect())
        if exposed.isEmpty():
            return
        if self.checker is not None:
            painter.fillRect(exposed, self.checker)
        sx = self.image.width() / max(self.display_size[0], 1)
        sy = self.image.height() / max(self.display_size[1], 1)
        source = QRectF(
            exposed.x() * sx, exposed.y() * sy, exposed.width() * sx, exposed.height() * sy
        )
        zoom = painter.worldTransform().m11() / max(sx, 1e-9)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1.0)
        painter.drawImage(exposed, self.image, source)


class CanvasView(QGraphicsView):
    """Shows one document; emits ``zoom_changed`` and ``cursor_moved`` for the status bar."""

    zoom_changed = Signal(float)
    cursor_moved = Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(45, 45, 48))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window handles file drops
        self.document: Document | None = None
        self.tool: Tool | None = None
        self.doc_item = ImageItem(blank_canvas_image(1, 1), checker=True)
        self.mask_item = ImageItem(blank_canvas_image(1, 1))
        self.mask_item.setOpacity(0.5)
        self.mask_item.setZValue(1)
        self.preview_item = ImageItem(blank_canvas_image(1, 1))
        self.preview_item.setZValue(2)
        self.preview_item.setVisible(False)
        for item in (self.doc_item, self.mask_item, self.preview_item):
            self.scene().addItem(item)
        self.mask_color = QColor(255, 40, 40)
        self._unsubscribe = None
        self._space_down = False
        self._panning = False
        self._pan_last = QPointF()

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
        self.doc_item.set_image(blank_canvas_image(doc.width, doc.height))
        self.mask_item.set_image(blank_canvas_image(doc.width, doc.height))
        self.scene().setSceneRect(QRectF(0, 0, doc.width, doc.height))
        self.refresh(doc.bounds)
        self.refresh_mask(doc.bounds)

    def _on_change(self, change: Change) -> None:
        if change.kind == "size":
            self._rebuild()
        elif change.kind == "layers":
            self.refresh(self.document.bounds)
        elif change.kind == "pixels":
            self.refresh(change.rect or self.document.bounds)
        elif change.kind == "mask":
            self.refresh_mask(change.rect or self.document.bounds)

    def refresh(self, rect: Rect) -> None:
        """Re-composite ``rect`` into the render cache and repaint it."""
        rect = rect.intersect(self.document.bounds)
        if rect.is_empty():
            return
        write_region(self.doc_item.image, rect.x, rect.y, self.document.composite(rect))
        self.doc_item.update(QRectF(rect.x, rect.y, rect.w, rect.h))

    def refresh_mask(self, rect: Rect) -> None:
        rect = rect.intersect(self.document.bounds)
        if rect.is_empty():
            return
        m = self.document.mask[rect.slices]
        a = np.rint(m * 255.0).astype(np.uint16)
        view = image_view(self.mask_item.image)[rect.slices]
        c = self.mask_color
        view[:, :, 0] = (a * c.blue() + 127) // 255
        view[:, :, 1] = (a * c.green() + 127) // 255
        view[:, :, 2] = (a * c.red() + 127) // 255
        view[:, :, 3] = a
        self.mask_item.update(QRectF(rect.x, rect.y, rect.w, rect.h))

    # -- preview overlay --------------------------------------------------------------------------
    def show_preview(self, image: QImage, display_rect: QRectF) -> None:
        """Overlay ``image`` stretched over ``display_rect`` (document coordinates)."""
        self.preview_item.set_image(
            image, (round(display_rect.width()), round(display_rect.height()))
        )
        self.preview_item.setPos(display_rect.topLeft())
        self.preview_item.setVisible(True)

    def update_preview(self, image_rect: QRectF) -> None:
        """Repaint the part of the preview covering ``image_rect`` (preview image pixels)."""
        item = self.preview_item
        sx = item.display_size[0] / max(item.image.width(), 1)
        sy = item.display_size[1] / max(item.image.height(), 1)
        item.update(
            QRectF(
                image_rect.x() * sx,
                image_rect.y() * sy,
                image_rect.width() * sx,
                image_rect.height() * sy,
            )
        )

    def hide_preview(self) -> None:
        self.preview_item.setVisible(False)
        self.preview_item.set_image(blank_canvas_image(1, 1))

    # -- zoom and pan -----------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, ZOOM_MIN), ZOOM_MAX)
        self.setTransform(self.transform().fromScale(zoom, zoom))
        self.zoom_changed.emit(zoom)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def fit(self) -> None:
        if self.document is None:
            return
        self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.set_zoom(self.zoom)  # clamp and announce

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta:
            self.zoom_by(1.0015**delta)
        event.accept()

    # -- pointer ----------------------------------------------------------------------------------
    def doc_pos(self, event) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.viewport().unsetCursor()
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
        if button == Qt.MouseButton.LeftButton and self.tool is not None:
            self.tool.press(self.doc_pos(event), 1.0, event.modifiers())

    def mouseMoveEvent(self, event) -> None:
        pos = self.doc_pos(event)
        self.cursor_moved.emit(int(np.floor(pos.x())), int(np.floor(pos.y())))
        if self._panning:
            delta = event.position() - self._pan_last
            self._pan_last = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if event.buttons() & Qt.MouseButton.LeftButton and self.tool is not None:
            self.tool.move(pos, 1.0, event.modifiers())

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
        if event.button() == Qt.MouseButton.LeftButton and self.tool is not None:
            self.tool.release(self.doc_pos(event), event.modifiers())
