"""The main window's File menu: New, Open Recent, Save / Save As (OpenRaster), Export with
labels and options, paste and copy, autosave and the recovery offer after a crash.

A mixin of :class:`studio.ui.main_window.MainWindow` (it uses the window's ``document``,
``settings``, ``tools``, ``controller``, ``set_document``, ``show_error`` and status bar).
Dialogs are methods tests replace (``ask_new_document``, ``ask_overwrite``, ``ask_recovery``).
"""

from __future__ import annotations

from pathlib import Path

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
from studio.export_metadata import ExportOptions, labels_from_layers
from studio.recovery import RecoveryEntry, RecoveryStore, new_key
from studio.ui.qimage import numpy_to_qimage, qimage_to_numpy

PROJECT_FILTER = "OpenRaster project (*.ora)"
OPEN_FILTER = (
    "Images and projects (*.ora *.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;"
    "OpenRaster projects (*.ora);;All files (*)"
)
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;TIFF (*.tif *.tiff)"
MAX_RECENT = 10


class FileCommands:
    # -- set-up ------------------------------------------------------------------------------------
    def _init_file_commands(self) -> None:
        self.recovery = RecoveryStore()
        self.recovery_key = new_key()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(int(self.settings.autosave_seconds * 1000))
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()

    def _document_replaced(self, old: Document | None) -> None:
        """A new document took the window: the old one was saved or discarded already."""
        if old is not None:
            self.recovery.discard(self.recovery_key)
        self.recovery_key = new_key()

    # -- autosave and recovery ---------------------------------------------------------------------
    def autosave_now(self) -> bool:
        """Copy the document to the recovery folder if it changed; never interrupts the artist."""
        doc = self.document
        if doc is None:
            return False
        title = Path(doc.info.path).name if doc.info.path else "Untitled"
        try:
            return self.recovery.autosave(
                doc, self.recovery_key, title=title, source_path=doc.info.path
            )
        except (StudioError, OSError) as exc:
            why = os_error_message(exc) if isinstance(exc, OSError) else str(exc)
            self.statusBar().showMessage(f"Autosave failed: {why}", 15000)
            return False

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
        return self.export_path(path)

    def export_options(self) -> ExportOptions:
        """Labels (unless turned off in the settings) and the remembered format options."""
        s, doc = self.settings, self.document
        labels = None
        if s.export_metadata and doc is not None:
            labels = labels_from_layers(layer.provenance for layer in doc.layers if layer.visible)
        return ExportOptions(
            labels,
            quality=s.export_jpeg_quality,
            lossless=s.export_webp_lossless,
            bit_depth=16 if s.export_tiff_16bit else None,
        )

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
