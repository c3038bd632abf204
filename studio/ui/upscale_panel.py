"""The Upscale panel: model picker with description and speed hint, scale, tile size, Run."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.jobs import UpscaleParams
from studio.models.registry import all_models

TILE_CHOICES = (
    ("Automatic", None),
    ("No tiling", 0),
    ("128 px", 128),
    ("256 px", 256),
    ("512 px", 512),
    ("1024 px", 1024),
)


def describe(description: str, speed_hint: str) -> str:
    """The model's description plus its speed, unless the description already says it."""
    if not speed_hint or speed_hint.lower().strip(" .") in description.lower():
        return description
    return f"{description} Speed: {speed_hint}."


class UpscalePanel(QWidget):
    """Emits ``run_requested(UpscaleParams)`` when the artist presses Upscale."""

    run_requested = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.model = QComboBox()
        for spec in all_models("upscale"):
            label = spec.name + (f" ×{spec.scale}" if spec.scale > 1 else "")
            self.model.addItem(label, spec.id)
            self.model.setItemData(self.model.count() - 1, spec.description, 0x0003)  # tooltip
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(mid);")
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.25, 16.0)
        self.scale.setSingleStep(0.5)
        self.scale.setValue(2.0)
        self.scale.setSuffix(" ×")
        self.tile = QComboBox()
        for label, value in TILE_CHOICES:
            self.tile.addItem(label, value)
        self.run_button = QPushButton("Upscale")
        self.run_button.clicked.connect(self._emit_run)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("", self.description)
        form.addRow("Scale", self.scale)
        form.addRow("Tiles", self.tile)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addStretch(1)
        self.model.currentIndexChanged.connect(self._describe)
        self._describe()

    def _describe(self) -> None:
        model_id = self.model.currentData()
        spec = next(m for m in all_models("upscale") if m.id == model_id)
        self.description.setText(describe(spec.description, spec.speed_hint))
        if spec.scale > 1 and self.scale.value() < 1.01:
            self.scale.setValue(spec.scale)

    def params(self) -> UpscaleParams:
        return UpscaleParams(
            model=self.model.currentData(), scale=self.scale.value(), tile=self.tile.currentData()
        )

    def _emit_run(self) -> None:
        self.run_requested.emit(self.params())
