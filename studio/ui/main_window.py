"""The main window: canvas, menus and shortcuts, panels, staging bar, status and job progress.

Feature panels (Upscale now; Inpaint, Stylize, Generate later) are added with
:meth:`MainWindow.add_task_panel`, which puts them as tabs of one "Tasks" dock.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QWidget,
)

from studio.document import Document
from studio.document.ora import is_project_path
from studio.engine.thread import EngineThread
from studio.errors import StudioError, os_error_message
from studio.imageio import frames_note, read_image, write_image
from studio.pixels import to_8bit
from studio.settings import Settings
from studio.ui.actions import build_actions
from studio.ui.batch_dialog import show_batch_dialog, stop_batch_before_quit
from studio.ui.canvas import CanvasView
from studio.ui.compare import CompareView
from studio.ui.controller import JobController
from studio.ui.file_commands import FileCommands
from studio.ui.panels.generate import GeneratePanel
from studio.ui.panels.history import HistoryPanel
from studio.ui.panels.inpaint import InpaintPanel
from studio.ui.panels.layers import LayersPanel
from studio.ui.panels.mask import MaskPanel
from studio.ui.panels.stylize import StylizePanel
from studio.ui.panels.tool_options import ToolOptionsPanel
from studio.ui.panels.upscale import UpscalePanel
from studio.ui.staging import StagingBar
from studio.ui.task_runs import TaskRunsMixin
from studio.ui.tools import ToolBox
from studio.ui.window_commands import DocumentCommands

OPEN_FILTER = (
    "Images and projects (*.ora *.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;All files (*)"
)
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;TIFF (*.tif *.tiff)"
MASK_FILTER = "PNG (*.png);;Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"


class MainWindow(FileCommands, DocumentCommands, TaskRunsMixin, QMainWindow):
    def __init__(self, engine: EngineThread, settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Studio")
        self.resize(1400, 880)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else Settings.load()
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(500)
        self._save_timer.timeout.connect(self.settings.save)
        self.document: Document | None = None
        self.last_error: str | None = None
        #: (document, its history step) at the last export: closing then loses no pixels
        self._exported_at: tuple[Document, object] | None = None
        self.canvas = CanvasView()
        self.staging = StagingBar(self.canvas.viewport())  # floats over the canvas
        self.staging.hide()
        self.setCentralWidget(self.canvas)
        self.controller = JobController(engine, self.canvas, lambda: self.document)
        self.controller.as_new_layer = self.settings.result_mode == "new_layer"
        self.tools = ToolBox(self.canvas, self.settings, lambda: self.document, self.schedule_save)
        self.compare = CompareView(self.canvas, lambda: self.document)
        self._build_status_bar()
        self.actions, self.tool_actions = build_actions(self)
        self._build_panels()
        self._connect()
        self._init_file_commands()
        self._fill_recent_menu()
        self.tool_actions[self.tools.current].setChecked(True)
        self.staging.set_landing(self.controller.as_new_layer)
        self._apply_mask_look()
        if self.settings.load_note:  # what a damaged settings file lost: said once, not a dialog
            self.statusBar().showMessage(self.settings.load_note, 30000)
            self.settings.load_note = None

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

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "-") + "-dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_panels(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.view_menu.addSeparator()
        self.tool_panel = ToolOptionsPanel(self.tools, self.tool_actions)
        self.mask_panel = MaskPanel(self.settings, self.actions, self.schedule_save)
        self.layers_panel = LayersPanel(self.actions)
        self.history_panel = HistoryPanel()
        self.tools_dock = self._dock("Tools", self.tool_panel, left)
        self.mask_dock = self._dock("Mask", self.mask_panel, left)
        self.layers_dock = self._dock("Layers", self.layers_panel, right)
        self.history_dock = self._dock("History", self.history_panel, right)
        self.task_tabs: QTabWidget | None = None
        self.task_dock: QDockWidget | None = None
        self.upscale_panel = UpscalePanel()
        self.upscale_panel.attach_engine(self.controller.engine)
        self.upscale_dock = self.add_task_panel("Upscale", self.upscale_panel)
        self.inpaint_panel = InpaintPanel(self.settings, self.schedule_save)
        self.add_task_panel("Inpaint", self.inpaint_panel)
        self.stylize_panel = StylizePanel()
        self.add_task_panel("Stylize", self.stylize_panel)
        self.generate_panel = GeneratePanel(self.settings, self.schedule_save)
        self.generate_panel.attach_engine(self.controller.engine)
        self.add_task_panel("Generate", self.generate_panel)

    def add_task_panel(self, title: str, widget: QWidget) -> QDockWidget:
        """Add a feature panel as a tab of the "Tasks" dock (created on first use)."""
        if self.task_tabs is None:
            self.task_tabs = QTabWidget()
            self.task_tabs.setDocumentMode(True)
            self.task_dock = self._dock(
                "Tasks", self.task_tabs, Qt.DockWidgetArea.RightDockWidgetArea
            )
            self.tabifyDockWidget(self.history_dock, self.task_dock)
            self.task_dock.raise_()
        self.task_tabs.addTab(widget, title)
        return self.task_dock

    def _connect(self) -> None:
        c = self.controller
        c.progress.connect(self._on_progress)
        c.busy_changed.connect(self._on_busy)
        c.staged_changed.connect(self._on_staged)
        c.failed.connect(lambda text: self.show_error("The job failed", text))
        c.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.cancel_button.clicked.connect(c.cancel)
        self.staging.accept_button.clicked.connect(self.accept_result)
        self.staging.discard_button.clicked.connect(self.discard_result)
        self.staging.regenerate_button.clicked.connect(self.regenerate)
        self.staging.landing_changed.connect(self._set_landing)
        self.staging.show_result.toggled.connect(self.canvas.preview_item.setVisible)
        for panel in (
            self.upscale_panel,
            self.inpaint_panel,
            self.stylize_panel,
            self.generate_panel,
        ):
            panel.run_requested.connect(self.run_panel)
        self.generate_panel.picked_changed.connect(self._on_generate_pick)
        self.generate_panel.describe_requested.connect(self.describe_picture)
        self.generate_panel.describer.failed.connect(
            lambda text: self.show_error("Describe failed", text)
        )
        self.controller.applied.connect(self._on_generate_message)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.canvas.cursor_moved.connect(lambda x, y: self.position_label.setText(f"{x}, {y}"))
        self.canvas.original_held.connect(self.compare.hold)
        self.tools.tool_changed.connect(lambda t: self.tool_actions[t].setChecked(True))
        self.tools.tool_changed.connect(self._show_tool_hint)
        self.history_panel.jump_requested.connect(self.jump_to)
        self.mask_panel.look_changed.connect(self._apply_mask_look)
        self.mask_panel.amounts_changed.connect(self._label_amounts)
        self._label_amounts()

    def schedule_save(self) -> None:
        """Write the settings soon (coalesces slider drags into one write)."""
        self._save_timer.start()

    def _label_amounts(self) -> None:
        """Menu entries say by how much (the panel's buttons keep their short names)."""
        s = self.settings
        for key, verb, amount in (
            ("grow", "Grow", s.grow_px),
            ("shrink", "Shrink", s.grow_px),
            ("feather", "Feather", s.feather_px),
        ):
            self.actions[key].setText(f"{verb} by {amount} px")
            self.actions[key].setIconText(verb)

    def _apply_mask_look(self) -> None:
        self.canvas.set_mask_color(QColor(*self.settings.mask_color))
        self.canvas.set_mask_opacity(self.settings.mask_opacity)

    def _set_landing(self, as_new_layer: bool) -> None:
        self.controller.as_new_layer = as_new_layer
        self.settings.result_mode = "new_layer" if as_new_layer else "merge"
        self.schedule_save()

    def _show_tool_hint(self, tool_id: str) -> None:
        hints = {
            "rect": "Drag to select; Shift adds, Alt subtracts; a click clears the mask",
            "ellipse": "Drag to select; Shift adds, Alt subtracts",
            "lasso": "Draw around an area; Shift adds, Alt subtracts",
            "polygon": "Click corners; double-click or Enter closes, Backspace undoes a corner",
            "mask_fill": "Click inside an outline painted on the mask to fill it",
            "brush": "Alt+click picks a colour; [ and ] change the size; X erases",
        }
        if tool_id in hints:
            self.statusBar().showMessage(hints[tool_id], 6000)

    # -- documents ---------------------------------------------------------------------------------
    def ask_save_changes(self) -> str:
        """Ask about unsaved edits: 'save', 'discard' or 'cancel'. Tests replace this method."""
        doc = self.document
        name = Path(doc.info.path).name if doc and doc.info.path else "this image"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Unsaved changes",
            f"Save the changes to {name} before closing it?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText("Closing without saving loses every edit and its history.")
        answer = box.exec()
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(QMessageBox.StandardButton(answer), "cancel")

    def confirm_discard_changes(self) -> bool:
        """True when the current document may be closed (unchanged, exported, or discarded)."""
        self.tools.finish()
        doc = self.document
        if doc is None or not doc.is_modified or self._unchanged_since_export(doc):
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def open_path(self, path: str | Path) -> bool:
        """Open an image file; on failure show one clear message and keep the current document."""
        if not self.confirm_discard_changes():
            return False
        if is_project_path(path):
            return self.open_project_path(path)
        try:
            loaded = read_image(path)
        except StudioError as exc:
            self.show_error("Cannot open image", str(exc))
            return False
        except OSError as exc:  # e.g. permission denied, or a disk error mid-read
            self.show_error("Cannot open image", os_error_message(exc, path))
            return False
        pixels = loaded.pixels
        pixels = to_8bit(pixels)  # the canvas edits in 8 bits per channel
        try:
            doc = Document.from_image(pixels, Path(path).stem)
        except (ValueError, MemoryError) as exc:
            self.show_error("Cannot open image", f"{path}: {exc}")
            return False
        self.controller.abandon()  # a result of the old image must not land on the new one
        doc.info.path = str(path)
        doc.info.metadata = loaded.metadata
        doc.mark_clean()
        self.set_document(doc)
        self.remember_recent(path)
        if note := frames_note(path, loaded.metadata):  # an animation: only frame 1 is kept
            self.statusBar().showMessage(note, 15000)
        return True

    def set_document(self, doc: Document) -> None:
        self.tools.cancel()
        self._document_replaced(self.document)
        self.document = doc
        self._exported_at = None
        self.generate_panel.clear_results()  # thumbnails of the previous document's run
        self.canvas.set_document(doc)
        self.layers_panel.set_document(doc)
        self.history_panel.set_document(doc)
        self.compare.set_document(doc)
        doc.subscribe(lambda c: self._update_title() if c.kind in ("history", "size") else None)
        self._update_title()
        self.canvas.setFocus()

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle("Studio")
            return
        name = Path(doc.info.path).name if doc.info.path else "Untitled"
        star = "*" if doc.is_modified else ""
        self.upscale_panel.set_image_size(doc.width, doc.height)
        self.setWindowTitle(f"{star}{name} — {doc.width}×{doc.height} — Studio")
        self.actions["undo"].setText(f"&Undo {doc.history.undo_name() or ''}".rstrip())
        self.actions["redo"].setText(f"&Redo {doc.history.redo_name() or ''}".rstrip())

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image", self.settings.last_folder, OPEN_FILTER
        )
        if path:
            self.open_path(path)

    def export_path(self, path: str | Path) -> bool:
        doc = self.document
        if doc is None:
            return False
        self.tools.finish()
        pixels = doc.composite()
        if pixels[:, :, 3].min() == 255:
            pixels = pixels[:, :, :3]
        try:
            write_image(path, pixels, doc.info.metadata, self.export_options(path))
        except StudioError as exc:
            self.show_error("Cannot export", str(exc))
            return False
        except OSError as exc:  # e.g. the disk filled up; the old file is kept intact
            self.show_error("Cannot export", os_error_message(exc, path))
            return False
        # the flat export is no project file: the title's unsaved mark stays (layers, history)
        self._exported_at = (doc, doc.history.current_step())
        self.statusBar().showMessage(f"exported {path}", 8000)
        return True

    def _unchanged_since_export(self, doc: Document) -> bool:
        exported = self._exported_at
        return (
            exported is not None
            and exported[0] is doc
            and exported[1] is doc.history.current_step()
        )

    def closeEvent(self, event) -> None:
        self.autosave_before_close()  # kept even if the question below is never answered
        if not self.confirm_discard_changes() or not stop_batch_before_quit(self):
            event.ignore()
            return
        self.recovery.discard(self.recovery_key)  # saved, exported or discarded by now
        self.stop_autosave()
        if self.controller.active is not None:
            self.controller.cancel()
        self._save_timer.stop()
        self.settings.save()
        event.accept()

    def open_batch_dialog(self) -> None:
        """File > Batch…: the current task panel's settings over a folder (a running batch is
        shown instead)."""
        show_batch_dialog(self)

    # -- staging -----------------------------------------------------------------------------------
    def accept_result(self) -> None:
        self.tools.finish()
        self.controller.accept()

    def discard_result(self) -> None:
        if self.controller.active is not None:
            self.controller.cancel()
        self.controller.discard()

    def regenerate(self) -> None:
        self.tools.finish()
        self.controller.regenerate()

    def escape(self) -> None:
        """Esc: first drop a shape in progress, otherwise discard the result."""
        if not self.tools.cancel():
            self.discard_result()

    def _on_staged(self, staged: bool) -> None:
        self.actions["accept"].setEnabled(staged)
        if staged and self.controller.staged is not None:
            task = self.controller.staged.task
            self.staging.show_for(f"{task.title} result ready", not task.replaces_document)
        else:
            self.staging.hide()

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

    def changeEvent(self, event) -> None:
        # a window that loses focus while Tab is held never sees the release
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self.compare.hold(False)
        super().changeEvent(event)
