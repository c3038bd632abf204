"""Before/after: the original image over the canvas, whole (Tab held) or left of a divider.

In compare mode a vertical divider splits the canvas: the original (as opened) on the left,
the current image on the right; drag the divider anywhere. A readout shows PSNR and SSIM of
the current image against the original (see :mod:`studio.metrics`), recomputed shortly after
the artist stops editing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QLabel

from studio.document import Change, Document
from studio.metrics import quality
from studio.ui.canvas import CanvasView
from studio.ui.mipmap import MipImageItem
from studio.ui.qimage import blank_canvas_image, numpy_to_qimage

GRAB_PX = 8  # how close (screen pixels) a press must be to grab the divider


class DividerItem(QGraphicsItem):
    """A vertical line with a round handle at document x = ``x``, 1 px wide at any zoom."""

    def __init__(self) -> None:
        super().__init__()
        self.x = 0.0
        self.height = 1.0
        self.setZValue(12)

    def set_line(self, x: float, height: float) -> None:
        self.prepareGeometryChange()
        self.x, self.height = x, height
        self.update()

    def boundingRect(self) -> QRectF:
        pad = 40.0 / max(self._zoom(), 1e-6)
        return QRectF(self.x - pad, -pad, 2 * pad, self.height + 2 * pad)

    def _zoom(self) -> float:
        views = self.scene().views() if self.scene() else []
        return views[0].transform().m11() if views else 1.0

    def paint(self, painter: QPainter, option, widget=None) -> None:
        z = max(self._zoom(), 1e-6)
        for color, width in ((QColor(0, 0, 0, 160), 4), (QColor(255, 255, 255), 2)):
            pen = QPen(color, width)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLine(QPointF(self.x, 0), QPointF(self.x, self.height))
        r = 9 / z
        painter.setBrush(QColor(255, 255, 255))
        painter.drawEllipse(QPointF(self.x, self.height / 2), r, r)


class CompareView(QObject):
    """Owns the original-image item, the divider and the PSNR/SSIM readout of one canvas."""

    def __init__(self, canvas: CanvasView, document: Callable[[], Document | None]) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.document = document
        self.item = MipImageItem(blank_canvas_image(1, 1), checker=True)
        self.item.setZValue(3)
        self.item.setVisible(False)
        self.divider = DividerItem()
        self.divider.setVisible(False)
        canvas.scene().addItem(self.item)
        canvas.scene().addItem(self.divider)
        self.readout = QLabel(canvas.viewport())
        self.readout.setStyleSheet(
            "QLabel { background: rgba(30, 30, 34, 210); color: white; padding: 4px 8px; "
            "border-radius: 4px; }"
        )
        self.readout.move(10, 10)
        self.readout.hide()
        self.enabled = False
        self.held = False
        self.split = 0.0
        self.last_quality = None
        self._dragging = False
        self._loaded_for: int | None = None  # id() of the original shown in the item
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self.update_readout)
        self._unsubscribe: Callable[[], None] | None = None
        canvas.compare = self

    # -- binding -----------------------------------------------------------------------------
    def set_document(self, doc: Document | None) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        self._loaded_for = None
        if doc is not None:
            self._unsubscribe = doc.subscribe(self._on_change)
            self.split = doc.width / 2
        self._apply()

    def _on_change(self, change: Change) -> None:
        if change.kind == "size":
            doc = self.document()
            self.split = min(self.split, doc.width) if doc else 0.0
            self._loaded_for = None
            self._apply()
        if change.kind in ("pixels", "layers", "size") and self.enabled:
            self._timer.start()

    def _ensure_original(self, doc: Document) -> bool:
        original = doc.original
        if original is None:
            return False
        if self._loaded_for != id(original):
            self.item.set_image(numpy_to_qimage(original), (doc.width, doc.height), blank=False)
            self._loaded_for = id(original)
        elif self.item.display_size != (doc.width, doc.height):
            self.item.set_image(self.item.image, (doc.width, doc.height), blank=False)
        return True

    # -- modes -------------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        """Compare mode: split view with a divider and the quality readout."""
        self.enabled = on
        self._apply()
        if on:
            self.update_readout()

    def hold(self, on: bool) -> None:
        """Tab held: the whole original, on top of everything."""
        self.held = on
        self._apply()

    def set_split(self, x: float) -> None:
        doc = self.document()
        if doc is None:
            return
        self.split = min(max(x, 0.0), float(doc.width))
        self._apply()

    def _apply(self) -> None:
        doc = self.document()
        show = doc is not None and (self.held or self.enabled) and self._ensure_original(doc)
        self.item.setVisible(bool(show))
        self.item.clip_right = None if self.held else self.split
        self.item.update()
        split_on = bool(show) and self.enabled and not self.held
        self.divider.setVisible(split_on)
        if doc is not None:
            self.divider.set_line(self.split, doc.height)
        self.readout.setVisible(self.enabled and doc is not None)
        if self.held and doc is not None:
            self.readout.setText("Original (release Tab to return)")
            self.readout.adjustSize()
            self.readout.show()
        elif self.enabled and self.last_quality is not None:
            self._show_quality()

    # -- divider dragging (the canvas asks before giving a press to the tool) ----------------
    def try_press(self, pos: QPointF) -> bool:
        if not (self.enabled and self.divider.isVisible()):
            return False
        if abs(pos.x() - self.split) * self.canvas.zoom > GRAB_PX:
            return False
        self._dragging = True
        self.canvas.viewport().setCursor(Qt.CursorShape.SplitHCursor)
        return True

    def drag(self, pos: QPointF) -> bool:
        if self._dragging:
            self.set_split(pos.x())
        return self._dragging

    def release(self) -> bool:
        was, self._dragging = self._dragging, False
        if was:
            self.canvas.viewport().unsetCursor()
        return was

    # -- readout -----------------------------------------------------------------------------
    def update_readout(self) -> None:
        doc = self.document()
        if not self.enabled or doc is None:
            return
        original = doc.original
        if original is None:
            self.last_quality = None
            self.readout.setText("No original to compare with")
        elif original.shape[:2] != (doc.height, doc.width):
            self.last_quality = None
            self.readout.setText(
                f"Original {original.shape[1]}×{original.shape[0]}, now "
                f"{doc.width}×{doc.height}: sizes differ, no score"
            )
        elif min(doc.width, doc.height) < 11:
            self.last_quality = None
            self.readout.setText("Too small for SSIM (needs 11 px)")
        else:
            self.last_quality = quality(doc.composite(), original)
            self._show_quality()
            return
        self.readout.adjustSize()

    def _show_quality(self) -> None:
        q = self.last_quality
        psnr = "∞" if math.isinf(q.psnr_db) else f"{q.psnr_db:.2f}"
        self.readout.setText(
            f"◀ Before | After ▶    PSNR {psnr} dB · SSIM {q.ssim:.4f}  (vs. original)"
        )
        self.readout.adjustSize()
