"""The main window's document commands: undo/redo, mask and layer operations, mask files.

A mixin of :class:`studio.ui.main_window.MainWindow` (it uses the window's ``document``,
``tools``, ``settings``, ``show_error`` and status bar). Each command first commits a stroke or
shape in progress, then makes exactly one undo step through the document's API.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.atomic_write import atomic_open, check_destination
from studio.document import Document, Layer, mask_ops
from studio.errors import StudioError, os_error_message
from studio.imageio import read_mask

MASK_FILTER = "PNG (*.png);;Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"


class DocumentCommands:
    # -- mask files --------------------------------------------------------------------------------
    def ask_scale_mask(self, mask_size: tuple[int, int], image_size: tuple[int, int]) -> bool:
        """A mask of the wrong size: offer to stretch it. Tests replace this method."""
        answer = QMessageBox.question(
            self,
            "Mask size differs",
            f"The mask is {mask_size[0]}×{mask_size[1]} but the image is "
            f"{image_size[0]}×{image_size[1]}. Scale the mask to fit the image?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def import_mask_dialog(self) -> None:
        if self.document is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Import mask", self.settings.last_folder, MASK_FILTER
        )
        if path:
            self.import_mask_path(path)

    def import_mask_path(self, path: str | Path) -> bool:
        """Load a mask image (white or opaque = edit) as one undo step; offer to scale it."""
        doc = self.document
        if doc is None:
            return False
        try:
            mask = read_mask(path)
        except StudioError as exc:
            self.show_error("Cannot import mask", str(exc))
            return False
        size = (mask.shape[1], mask.shape[0])
        if size != (doc.width, doc.height):
            if not self.ask_scale_mask(size, (doc.width, doc.height)):
                return False
            mask = mask_ops.resize_mask(mask, doc.width, doc.height)
        self.tools.finish()
        doc.set_mask(mask, f"Import mask {Path(path).name}")
        return True

    def export_mask_dialog(self) -> None:
        if self.document is None:
            return
        start = str(Path(self.document.info.path or "untitled").with_name("mask.png"))
        path, _ = QFileDialog.getSaveFileName(self, "Export mask", start, "PNG (*.png)")
        if path:
            self.export_mask_path(path)

    def export_mask_path(self, path: str | Path) -> bool:
        """Save the mask as an 8-bit grayscale PNG (255 = edit)."""
        if self.document is None:
            return False
        self.tools.finish()
        path = Path(path).with_suffix(".png") if Path(path).suffix == "" else Path(path)
        try:
            check_destination(path)
            with atomic_open(path) as f:
                Image.fromarray(mask_ops.mask_to_pixels(self.document.mask), "L").save(f, "PNG")
        except StudioError as exc:
            self.show_error("Cannot export the mask", str(exc))
            return False
        except OSError as exc:
            self.show_error("Cannot export the mask", os_error_message(exc, path))
            return False
        self.statusBar().showMessage(f"mask saved to {path}", 8000)
        return True

    # -- editing -----------------------------------------------------------------------------------
    def _doc_ready(self) -> Document | None:
        """The document, with any stroke or shape in progress committed first."""
        self.tools.finish()
        return self.document

    def undo(self) -> None:
        if doc := self._doc_ready():
            doc.undo()

    def redo(self) -> None:
        if doc := self._doc_ready():
            doc.redo()

    def jump_to(self, position: int) -> None:
        if doc := self._doc_ready():
            doc.jump_to(position)

    def select_all(self) -> None:
        if doc := self._doc_ready():
            doc.fill_mask(1.0, "Select all")

    def clear_mask(self) -> None:
        if doc := self._doc_ready():
            doc.fill_mask(0.0, "Clear mask")

    def invert_mask(self) -> None:
        if doc := self._doc_ready():
            doc.invert_mask()

    def fill_holes(self) -> None:
        if doc := self._doc_ready():
            mask_ops.fill_holes_document(doc)

    def grow_mask(self) -> None:
        if doc := self._doc_ready():
            mask_ops.grow_document(doc, self.settings.grow_px)

    def shrink_mask(self) -> None:
        if doc := self._doc_ready():
            mask_ops.shrink_document(doc, self.settings.grow_px)

    def feather_mask(self) -> None:
        if doc := self._doc_ready():
            mask_ops.feather_document(doc, self.settings.feather_px)

    def add_layer(self) -> None:
        if doc := self._doc_ready():
            n = len(doc.layers)
            doc.add_layer(Layer.blank(doc.width, doc.height, f"Layer {n}"), doc.active_index + 1)

    def duplicate_layer(self) -> None:
        if doc := self._doc_ready():
            doc.duplicate_layer(doc.active_layer.id)

    def delete_layer(self) -> None:
        doc = self._doc_ready()
        if doc is None:
            return
        if len(doc.layers) == 1:
            self.statusBar().showMessage("The last layer cannot be deleted", 6000)
            return
        doc.remove_layer(doc.active_layer.id)

    def merge_down(self) -> None:
        doc = self._doc_ready()
        if doc is None:
            return
        if doc.active_index == 0:
            self.statusBar().showMessage(
                "The bottom layer has nothing below it to merge into", 6000
            )
            return
        doc.merge_down(doc.active_layer.id)

    def move_layer(self, delta: int) -> None:
        doc = self._doc_ready()
        if doc is None:
            return
        dest = doc.active_index + delta
        if 0 <= dest < len(doc.layers):
            doc.move_layer(doc.active_index, dest)
