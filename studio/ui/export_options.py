"""The small dialog after Export's file dialog: the options of the chosen format only.

JPEG has a quality, WebP a quality or lossless, PNG and TIFF 8 or 16 bits per channel, and every
format but BMP can be labelled with what made the picture (offered only when a model did). The
choices are remembered in :class:`~studio.settings.Settings`.

16 bits are offered always, with a note, rather than only for 16-bit documents: the canvas holds
8 bits per channel (16-bit files are reduced on open), so no document ever holds 16-bit pixels,
yet artists hand exports to tools that want 16-bit files. The widening is exact (value × 257).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QWidget,
)

from studio.settings import Settings

SIXTEEN_BIT_NOTE = (
    "Studio paints in 8 bits per channel: a 16-bit file holds the same colours exactly, for "
    "tools that want 16-bit input. It adds no detail and is about twice the size."
)


@dataclass(frozen=True)
class FormatOptions:
    """The options a file format has."""

    name: str
    quality: bool = False
    lossless: bool = False
    sixteen_bit: bool = False
    labels: bool = True


FORMATS = {
    ".png": FormatOptions("PNG", sixteen_bit=True),
    ".jpg": FormatOptions("JPEG", quality=True),
    ".jpeg": FormatOptions("JPEG", quality=True),
    ".webp": FormatOptions("WebP", quality=True, lossless=True),
    ".tif": FormatOptions("TIFF", sixteen_bit=True),
    ".tiff": FormatOptions("TIFF", sixteen_bit=True),
    ".bmp": FormatOptions("BMP", labels=False),
}


def format_options(path: str | Path) -> FormatOptions:
    """The options of ``path``'s format (by its extension); none for an unknown one."""
    suffix = Path(path).suffix.lower()
    return FORMATS.get(suffix, FormatOptions(suffix.lstrip(".").upper() or "?", labels=False))


def is_tiff(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".tif", ".tiff")


class ExportOptionsDialog(QDialog):
    """Options for exporting to ``path``, filled from ``settings``; :meth:`store` writes the
    choices back. ``can_label``: some visible layer says what model made it."""

    def __init__(
        self, path: str | Path, settings: Settings, *, can_label: bool, parent: QWidget | None
    ) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.format = fmt = format_options(path)
        self.setWindowTitle(f"Export {fmt.name}")
        form = QFormLayout(self)
        self.quality = self.lossless = self.sixteen_bit = self.label = None
        if fmt.lossless:
            self.lossless = QCheckBox("Lossless (every pixel exact; larger file)")
            self.lossless.setChecked(settings.export_webp_lossless)
            form.addRow("", self.lossless)
        if fmt.quality:
            webp = fmt.lossless
            value = settings.export_webp_quality if webp else settings.export_jpeg_quality
            row, self.quality = _quality_row(value)
            form.addRow("Quality", row)
            if self.lossless is not None:
                self.lossless.toggled.connect(lambda on: row.setEnabled(not on))
                row.setEnabled(not self.lossless.isChecked())
        if fmt.sixteen_bit:
            on = settings.export_tiff_16bit if is_tiff(path) else settings.export_png_16bit
            self.sixteen_bit = QCheckBox("16 bits per channel")
            self.sixteen_bit.setChecked(on)
            note = QLabel(SIXTEEN_BIT_NOTE)
            note.setWordWrap(True)
            note.setEnabled(False)  # drawn greyed: a note, not a control
            form.addRow("Depth", self.sixteen_bit)
            form.addRow("", note)
        if fmt.labels and can_label:
            self.label = QCheckBox("Label with what made it (model, settings, seed)")
            self.label.setToolTip("PNG text 'parameters' and XMP with the IPTC source type")
            self.label.setChecked(settings.export_metadata)
            form.addRow("", self.label)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @property
    def has_options(self) -> bool:
        """False for a format with nothing to choose: then no dialog is shown."""
        return any(
            w is not None for w in (self.quality, self.lossless, self.sixteen_bit, self.label)
        )

    def store(self, settings: Settings) -> None:
        """Remember the choices (each format keeps its own)."""
        webp = self.format.lossless
        if self.lossless is not None:
            settings.export_webp_lossless = self.lossless.isChecked()
        if self.quality is not None:
            if webp:
                settings.export_webp_quality = self.quality.value()
            else:
                settings.export_jpeg_quality = self.quality.value()
        if self.sixteen_bit is not None:
            if is_tiff(self.path):
                settings.export_tiff_16bit = self.sixteen_bit.isChecked()
            else:
                settings.export_png_16bit = self.sixteen_bit.isChecked()
        if self.label is not None:
            settings.export_metadata = self.label.isChecked()


def _quality_row(value: int) -> tuple[QWidget, QSpinBox]:
    """A slider and a spin box bound together, 1 to 100."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    slider = QSlider(Qt.Orientation.Horizontal)
    spin = QSpinBox()
    for widget in (slider, spin):
        widget.setRange(1, 100)
        widget.setValue(value)
    slider.valueChanged.connect(spin.setValue)
    spin.valueChanged.connect(slider.setValue)
    layout.addWidget(slider, 1)
    layout.addWidget(spin)
    return row, spin
