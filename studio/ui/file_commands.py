"""The main window's File menu: New, Open Recent, Save / Save As (OpenRaster), Export with
labels and options, paste and copy, autosave and the recovery offer after a crash.

A mixin of :class:`studio.ui.main_window.MainWindow` (it uses the window's ``document``,
``settings``, ``tools``, ``controller``, ``set_document``, ``show_error`` and status bar).
Dialogs are methods tests replace (``ask_new_document``, ``ask_overwrite``, ``ask_recovery``).

Autosave never holds up the window: the GUI thread only snapshots the document (copies of the
layers changed since the last autosave, into memory the worker allocated beforehand) and one
worker thread, owned here and never the engine's, encodes and writes it; at most one autosave
is in flight, and closing waits for it before the last one.
"""

from __future__ import annotations

import concurrent.futures
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QMessageBox,
    QPushButton,
    QSpinBox,
)

from studio.document import Document, Layer
from studio.document.ora import is_project_path, open_project, save_project
from studio.errors import StudioError, os_error_message
from studio.export_metadata import ExportLabels, ExportOptions, labels_from_layers
from studio.recovery import RecoveryEntry, RecoveryStore, make_buffers, new_key
from studio.ui.export_options import ExportOptionsDialog, is_tiff
from studio.ui.qimage import numpy_to_qimage, qimage_to_numpy

PROJECT_FILTER = "OpenRaster project (*.ora)"
OPEN_FILTER = (
    "Images and projects (*.ora *.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;"
    "OpenRaster projects (*.ora);;All files (*)"
)
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;TIFF (*.tif *.tiff)"
MAX_RECENT = 10
#: closing waits this long for an autosave being written, and as long again for the last one
AUTOSAVE_CLOSE_WAIT_S = 30.0
#: how often the GUI looks whether the autosave being written has finished
_AUTOSAVE_POLL_MS = 50


class FileCommands:
    # -- set-up ------------------------------------------------------------------------------------
    def _init_file_commands(self) -> None:
        self.recovery = RecoveryStore()
        self.recovery_key = new_key()
        self._autosave_pool: ThreadPoolExecutor | None = None
        #: the worker's current part: making buffers for a snapshot, or writing one
        self._autosave_future: Future[Any] | None = None
        self._autosave_then_snapshot = False
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(int(self.settings.autosave_seconds * 1000))
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()
        self._autosave_poll = QTimer(self)
        self._autosave_poll.setInterval(_AUTOSAVE_POLL_MS)
        self._autosave_poll.timeout.connect(self._autosave_check)

    def _document_replaced(self, old: Document | None) -> None:
        """A new document took the window: the old one was saved or discarded already."""
        if old is not None:
            self.recovery.discard(self.recovery_key)
        self.recovery_key = new_key()

    # -- autosave and recovery ---------------------------------------------------------------------
    def autosave_now(self) -> bool:
        """Start copying the document to the recovery folder if it changed and no autosave is
        being written; the writing happens off the GUI thread. Returns whether one started."""
        if self.autosave_running():
            return False  # the next tick saves what changed meanwhile
        return self._start_autosave()

    def autosave_running(self) -> bool:
        """Whether an autosave is under way (until the GUI thread has seen it finish)."""
        return self._autosave_future is not None

    def wait_for_autosave(self, timeout: float = AUTOSAVE_CLOSE_WAIT_S) -> bool:
        """Block until the autosave under way is written; False if it still runs at timeout."""
        deadline = time.monotonic() + timeout
        while (future := self._autosave_future) is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not concurrent.futures.wait([future], left).done:
                return False
            self._autosave_check()  # may go on from making buffers to writing
        return True

    def autosave_before_close(self) -> bool:
        """On close: let the autosave under way finish, then save the latest state and wait
        for that too (each at most :data:`AUTOSAVE_CLOSE_WAIT_S`). True when nothing is left
        being written."""
        self.wait_for_autosave()
        # after a timeout this queues behind the late one on the same single worker
        self._start_autosave(prepare=False)
        return self.wait_for_autosave()

    def stop_autosave(self) -> None:
        """The window closes: no more autosaves; a late write still finishes before exit."""
        self.autosave_timer.stop()
        self._autosave_poll.stop()
        if self._autosave_pool is not None:
            self._autosave_pool.shutdown(wait=False)
            self._autosave_pool = None

    def _start_autosave(self, *, prepare: bool = True, spare: list | None = None) -> bool:
        """Snapshot and hand the write to the worker; with ``prepare``, first have the worker
        make the new memory the snapshot needs (then :meth:`_autosave_check` snapshots)."""
        doc = self.document
        if doc is None:
            return False
        key = self.recovery_key
        if prepare and (needs := self.recovery.copies_needed(doc, key)):
            self._autosave_then_snapshot = True
            self._submit_autosave(make_buffers, needs)
            return True
        title = Path(doc.info.path).name if doc.info.path else "Untitled"
        try:
            job = self.recovery.snapshot(
                doc, key, title=title, source_path=doc.info.path, spare=spare
            )
        except MemoryError:
            self.statusBar().showMessage("Autosave failed: not enough memory for a copy", 15000)
            return False
        if job is None:
            return False
        self._submit_autosave(job.write)
        return True

    def _submit_autosave(self, work: Any, *args: Any) -> None:
        if self._autosave_pool is None:
            self._autosave_pool = ThreadPoolExecutor(1, thread_name_prefix="studio-autosave")
        self._autosave_future = self._autosave_pool.submit(work, *args)
        self._autosave_poll.start()

    def _autosave_check(self) -> None:
        """On the GUI thread, once the worker's part is done: snapshot into the buffers it
        made, or say that the write failed."""
        future = self._autosave_future
        if future is None or not future.done():
            return
        self._autosave_poll.stop()
        self._autosave_future = None
        then_snapshot, self._autosave_then_snapshot = self._autosave_then_snapshot, False
        exc = future.exception()
        if exc is not None:
            why = os_error_message(exc) if isinstance(exc, OSError) else str(exc)
            self.statusBar().showMessage(f"Autosave failed: {why}", 15000)
        elif then_snapshot:
            self._start_autosave(prepare=False, spare=future.result())

    def ask_recovery(self, entry: RecoveryEntry) -> str:
        """'restore', 'discard' or 'keep' for one recoverable document. Tests replace this."""
        box = QMessageBox(self)
        box.setWindowTitle("Recover unsaved work")
        box.setText(f"Studio closed without saving “{entry.title}”.")
        box.setInformativeText(f"Autosaved {entry.time_text}. Restore it now?")
        if (png := entry.thumbnail_png()) and (pixmap := QPixmap()).loadFromData(png):
            box.setIconPixmap(pixmap)
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep for later", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        return "restore" if clicked is restore else "discard" if clicked is discard else "keep"

    def offer_recovery(self) -> bool:
        """On launch: offer each document a crashed session left; True if one was restored."""
        for entry in self.recovery.entries():
            answer = self.ask_recovery(entry)
            if answer == "discard":
                self.recovery.discard(entry.key)
            elif answer == "restore":
                try:
                    opened = self.recovery.restore(entry)
                except (StudioError, OSError) as exc:
                    self.show_error("Cannot restore", str(exc))
                    continue
                self.controller.abandon()
                self.set_document(opened.document)
                self.recovery_key = entry.key  # later autosaves replace this recovery file
                self.statusBar().showMessage(f"restored {entry.title} ({entry.time_text})", 15000)
                return True
        return False

    # -- new, open, save ---------------------------------------------------------------------------
    def ask_new_document(self) -> tuple[int, int, tuple[int, int, int] | None] | None:
        """(width, height, background colour or None for transparent), or None if cancelled."""
        dialog = QDialog(self)
        dialog.setWindowTitle("New image")
        form = QFormLayout(dialog)
        width, height = QSpinBox(), QSpinBox()
        for box, value in ((width, 1920), (height, 1080)):
            box.setRange(1, 16384)
            box.setValue(value)
        transparent = QCheckBox("Transparent background")
        colour = [255, 255, 255]
        pick = QPushButton("White")

        def choose() -> None:
            chosen = QColorDialog.getColor(parent=dialog)
            if chosen.isValid():
                colour[:] = [chosen.red(), chosen.green(), chosen.blue()]
                pick.setText(chosen.name())

        pick.clicked.connect(choose)
        transparent.toggled.connect(lambda on: pick.setEnabled(not on))
        form.addRow("Width", width)
        form.addRow("Height", height)
        form.addRow("Background", pick)
        form.addRow("", transparent)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        background = None if transparent.isChecked() else (colour[0], colour[1], colour[2])
        return width.value(), height.value(), background

    def new_document(self) -> bool:
        if not self.confirm_discard_changes():
            return False
        answer = self.ask_new_document()
        if answer is None:
            return False
        width, height, background = answer
        try:
            doc = Document(width, height)
        except (ValueError, MemoryError) as exc:
            self.show_error("Cannot create the image", str(exc))
            return False
        layer = Layer.blank(width, height, "Background")
        if background is not None:
            layer.pixels[:] = (*background, 255)
        doc.layers.append(layer)
        doc.mark_clean()
        self.controller.abandon()
        self.set_document(doc)
        return True

    def open_project_path(self, path: str | Path) -> bool:
        """Open an ``.ora`` (ours or another program's); notes go to the status bar."""
        try:
            opened = open_project(path)
        except StudioError as exc:
            self.show_error("Cannot open project", str(exc))
            return False
        except OSError as exc:
            self.show_error("Cannot open project", os_error_message(exc, path))
            return False
        self.controller.abandon()
        self.set_document(opened.document)
        self.remember_recent(path)
        if opened.notes:
            self.statusBar().showMessage("; ".join(opened.notes), 20000)
        return True

    def save(self) -> bool:
        """Ctrl+S: to the project file, or Save As when the document has none yet."""
        doc = self.document
        if doc is None:
            return False
        if doc.info.path and is_project_path(doc.info.path):
            return self.save_project_path(doc.info.path)
        return self.save_as()

    def save_as(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        start = Path(self.settings.last_folder or ".") / "untitled.ora"
        if doc.info.path:
            start = Path(doc.info.path).with_suffix(".ora")
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(start), PROJECT_FILTER)
        if not path:
            return False
        if not is_project_path(path):
            path += ".ora"
        return self.save_project_path(path)

    def save_project_path(self, path: str | Path) -> bool:
        """Write the project; the document is then clean and its recovery file removed."""
        doc = self.document
        if doc is None:
            return False
        self.tools.finish()
        try:
            save_project(doc, path)
        except StudioError as exc:
            self.show_error("Cannot save", str(exc))
            return False
        except OSError as exc:  # the old project is intact (atomic write)
            self.show_error("Cannot save", os_error_message(exc, path))
            return False
        doc.info.path = str(path)
        doc.mark_clean()
        self.recovery.discard(self.recovery_key)
        self.remember_recent(path)
        self._update_title()
        self.statusBar().showMessage(f"saved {path}", 8000)
        return True

    # -- recent files ------------------------------------------------------------------------------
    def remember_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        recent = [path, *(p for p in self.settings.recent_files if p != path)]
        self.settings.recent_files = tuple(recent[:MAX_RECENT])
        self.settings.last_folder = str(Path(path).parent)
        self.schedule_save()
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        menu = getattr(self, "recent_menu", None)
        if menu is None:
            return
        menu.clear()
        for path in self.settings.recent_files:
            action = menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        menu.setEnabled(bool(self.settings.recent_files))

    # -- export ------------------------------------------------------------------------------------
    def export_start_name(self) -> str:
        """A name for the export that is never the source file's own (``photo-edited.png``)."""
        doc = self.document
        source = Path(doc.info.path) if doc is not None and doc.info.path else None
        if source is None:
            return str(Path(self.settings.last_folder or ".") / "untitled.png")
        suffix = ".png" if is_project_path(source) else source.suffix.lower() or ".png"
        return str(source.with_name(f"{source.stem}-edited{suffix}"))

    def ask_overwrite(self, path: str | Path) -> bool:
        """Whether an existing file may be replaced. Tests replace this method."""
        answer = QMessageBox.question(
            self,
            "Replace file?",
            f"{Path(path).name} already exists. Replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def export_dialog(self) -> bool:
        """File dialog, a question before replacing a file, the format's options, then write."""
        if self.document is None:
            return False
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export image",
            self.export_start_name(),
            EXPORT_FILTER,
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return False
        if Path(path).exists() and not self.ask_overwrite(path):
            return False
        if not self.ask_export_options(path):
            return False
        return self.export_path(path)

    def ask_export_options(self, path: str | Path) -> bool:
        """The options of ``path``'s format (none shown for a format without any); the choices
        are remembered. False when the artist cancelled."""
        labels = self._export_labels(force=True)
        dialog = ExportOptionsDialog(path, self.settings, can_label=labels is not None, parent=self)
        try:
            if not dialog.has_options:
                return True
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            dialog.store(self.settings)
            self.schedule_save()
            return True
        finally:
            dialog.deleteLater()

    def export_options(self, path: str | Path | None = None) -> ExportOptions:
        """Labels (unless turned off in the settings) and the remembered options of ``path``'s
        format (16 bits are kept apart for PNG and TIFF)."""
        s = self.settings
        sixteen = s.export_tiff_16bit if path is not None and is_tiff(path) else s.export_png_16bit
        webp = path is not None and Path(path).suffix.lower() == ".webp"
        return ExportOptions(
            self._export_labels(),
            quality=s.export_webp_quality if webp else s.export_jpeg_quality,
            lossless=s.export_webp_lossless,
            bit_depth=16 if sixteen else None,
        )

    def _export_labels(self, *, force: bool = False) -> ExportLabels | None:
        """What made the visible layers, unless labels are turned off (``force``: anyway)."""
        doc = self.document
        if doc is None or not (force or self.settings.export_metadata):
            return None
        return labels_from_layers(layer.provenance for layer in doc.layers if layer.visible)

    # -- clipboard ---------------------------------------------------------------------------------
    def paste_image(self) -> bool:
        """Ctrl+V: an image on the clipboard lands as a new layer (top-left, cropped to fit),
        or becomes the document when none is open."""
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.statusBar().showMessage("The clipboard holds no image", 6000)
            return False
        rgba = qimage_to_numpy(image)
        doc = self.document
        self.tools.finish()
        if doc is None:
            doc = Document.from_image(rgba, "Pasted")
            doc.mark_clean()
            self.set_document(doc)
            return True
        layer = Layer.blank(doc.width, doc.height, "Pasted")
        h, w = min(doc.height, rgba.shape[0]), min(doc.width, rgba.shape[1])
        layer.pixels[:h, :w] = rgba[:h, :w]
        doc.add_layer(layer, doc.active_index + 1, "Paste")
        return True

    def copy_image(self) -> bool:
        """Ctrl+C: the selection (its box) of the visible layers, else the whole canvas."""
        doc = self.document
        if doc is None:
            return False
        self.tools.finish()
        rect = doc.selection if doc.selection and not doc.selection.is_empty() else None
        pixels = np.ascontiguousarray(doc.composite(rect))
        QGuiApplication.clipboard().setImage(numpy_to_qimage(pixels).copy())
        self.statusBar().showMessage(f"copied {pixels.shape[1]}×{pixels.shape[0]}", 4000)
        return True
