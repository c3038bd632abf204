"""The main window: canvas, menus and shortcuts, panels, staging bar, status and job progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.document import Document
from studio.engine.thread import EngineThread
from studio.errors import StudioError
from studio.imageio import read_image, write_image
from studio.ui.canvas import CanvasView
from studio.ui.controller import JobController
from studio.ui.upscale_panel import UpscalePanel

OPEN_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;All files (*)"
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;TIFF (*.tif *.tiff)"


class StagingBar(QWidget):
    """Accept / Discard for a finished result, shown above the canvas."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QLabel("Result ready")
        self.accept_button = QPushButton("Accept (Enter)")
        self.discard_button = QPushButton("Discard (Esc)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.accept_button)
        layout.addWidget(self.discard_button)
        self.setStyleSheet("StagingBar { background: #3b4252; } QLabel { color: white; }")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)


class MainWindow(QMainWindow):
    def __init__(self, engine: EngineThread) -> None:
        super().__init__()
        self.setWindowTitle("Studio")
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        self.document: Document | None = None
        self.canvas = CanvasView()
        self.staging = StagingBar()
        self.staging.hide()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.staging)
        column.addWidget(self.canvas, 1)
        self.setCentralWidget(central)
        self.controller = JobController(engine, self.canvas, lambda: self.document)
        self._build_status_bar()
        self._build_panels()
        self._build_actions()
        self._connect()
        self.last_error: str | None = None

    # -- construction ------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.position_label = QLabel()
        self.zoom_label = QLabel("100%")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (within one tile or step)")
        for w in (self.progress_label, self.progress, self.cancel_button):
            w.setVisible(False)
            bar.addPermanentWidget(w)
        bar.addPermanentWidget(self.position_label)
        bar.addPermanentWidget(self.zoom_label)

    def _build_panels(self) -> None:
        self.upscale_panel = UpscalePanel()
        dock = QDockWidget("Upscale", self)
        dock.setObjectName("upscale-dock")
        dock.setWidget(self.upscale_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.upscale_dock = dock

    def _action(self, text: str, slot, *shortcuts: QKeySequence | str, menu=None) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.triggered.connect(slot)
        self.addAction(action)
        if menu is not None:
            menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open, menu=file_menu)
        self._action("&Export…", self.export_dialog, "Ctrl+Shift+E", menu=file_menu)
        file_menu.addSeparator()
        self._action("&Quit", self.close, QKeySequence.StandardKey.Quit, menu=file_menu)
        edit = mb.addMenu("&Edit")
        self.undo_action = self._action("&Undo", self.undo, "Ctrl+Z", menu=edit)
        self.redo_action = self._action("&Redo", self.redo, "Ctrl+Shift+Z", "Ctrl+Y", menu=edit)
        view = mb.addMenu("&View")
        self._action("Zoom &in", lambda: self.canvas.zoom_by(1.25), "Ctrl+=", "Ctrl++", menu=view)
        self._action("Zoom &out", lambda: self.canvas.zoom_by(0.8), "Ctrl+-", menu=view)
        self._action("&Fit to window", self.canvas.fit, "Ctrl+0", menu=view)
        self._action("&Actual size (100%)", self.canvas.actual_size, "Ctrl+1", menu=view)
        view.addAction(self.upscale_dock.toggleViewAction())
        self.accept_action = self._action("Accept result", self.accept_result, "Return", "Enter")
        self.discard_action = self._action("Discard result", self.discard_result, "Escape")
        self.accept_action.setEnabled(False)

    def _connect(self) -> None:
        c = self.controller
        c.progress.connect(self._on_progress)
        c.busy_changed.connect(self._on_busy)
        c.staged_changed.connect(self.staging.setVisible)
        c.staged_changed.connect(self.accept_action.setEnabled)
        c.failed.connect(lambda text: self.show_error("The job failed", text))
        c.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.cancel_button.clicked.connect(c.cancel)
        self.staging.accept_button.clicked.connect(self.accept_result)
        self.staging.discard_button.clicked.connect(self.discard_result)
        self.upscale_panel.run_requested.connect(self.run_upscale)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.canvas.cursor_moved.connect(lambda x, y: self.position_label.setText(f"{x}, {y}"))

    # -- documents ---------------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        """Open an image file; on failure show one clear message and keep the current document."""
        try:
            loaded = read_image(path)
        except StudioError as exc:
            self.show_error("Cannot open image", str(exc))
            return False
        pixels = loaded.pixels
        if pixels.dtype != np.uint8:  # the canvas edits in 8 bits per channel
            pixels = (pixels.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        self.controller.discard()
        doc = Document.from_image(pixels, Path(path).stem)
        doc.info.path = str(path)
        doc.info.metadata = loaded.metadata
        self.set_document(doc)
        return True

    def set_document(self, doc: Document) -> None:
        self.document = doc
        self.canvas.set_document(doc)
        doc.subscribe(lambda change: self._update_title() if change.kind != "pixels" else None)
        self._update_title()

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle("Studio")
            return
        name = Path(doc.info.path).name if doc.info.path else "Untitled"
        self.setWindowTitle(f"{name} — {doc.width}×{doc.height} — Studio")
        self.undo_action.setText(f"&Undo {doc.history.undo_name() or ''}".rstrip())
        self.redo_action.setText(f"&Redo {doc.history.redo_name() or ''}".rstrip())

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", OPEN_FILTER)
        if path:
            self.open_path(path)

    def export_dialog(self) -> None:
        if self.document is None:
            return
        start = str(Path(self.document.info.path or "untitled").with_suffix(".png"))
        path, _ = QFileDialog.getSaveFileName(self, "Export image", start, EXPORT_FILTER)
        if path:
            self.export_path(path)

    def export_path(self, path: str | Path) -> bool:
        doc = self.document
        if doc is None:
            return False
        pixels = doc.composite()
        if pixels[:, :, 3].min() == 255:
            pixels = pixels[:, :, :3]
        try:
            write_image(path, pixels, doc.info.metadata)
        except (StudioError, OSError) as exc:
            self.show_error("Cannot export", str(exc))
            return False
        self.statusBar().showMessage(f"exported {path}", 8000)
        return True

    # -- editing -----------------------------------------------------------------------------------
    def undo(self) -> None:
        if self.document is not None:
            self.document.undo()

    def redo(self) -> None:
        if self.document is not None:
            self.document.redo()

    def run_upscale(self, params) -> None:
        if self.document is None:
            return
        self.controller.submit(params, self.document.composite())

    def accept_result(self) -> None:
        self.controller.accept()

    def discard_result(self) -> None:
        if self.controller.active is not None:
            self.controller.cancel()
        self.controller.discard()

    # -- feedback ----------------------------------------------------------------------------------
    def show_error(self, title: str, text: str) -> QMessageBox:
        """A non-blocking warning box (the app keeps running behind it)."""
        self.last_error = text
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress_label.setText(text)

    def _on_busy(self, busy: bool) -> None:
        for w in (self.progress_label, self.progress, self.cancel_button):
            w.setVisible(busy)
        self.upscale_panel.run_button.setEnabled(True)

    # -- drag and drop -----------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0].toLocalFile())
            event.acceptProposedAction()
