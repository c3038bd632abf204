"""The Upscale panel: model picker (with description, speed hint, own weights), scale, tiles."""

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

from studio.engine.device import choose_device, describe
from studio.engine.jobs import UpscaleParams
from studio.engine.tasks.upscale import plan_upscale
from studio.errors import StudioError
from studio.models.registry import all_models, get_model
from studio.ui.panels.model_picker import ModelPicker

TILE_CHOICES = (
    ("Automatic", None),
    ("No tiling", 0),
    ("128 px", 128),
    ("256 px", 256),
    ("512 px", 512),
    ("1024 px", 1024),
)


class UpscalePanel(QWidget):
    """Emits ``run_requested(UpscaleParams)`` when the artist presses Upscale."""

    run_requested = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.model = ModelPicker("upscale")
        self.description = self.model.description
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.25, 16.0)
        self.scale.setSingleStep(0.5)
        self.scale.setValue(2.0)
        self.scale.setSuffix(" ×")
        self.tile = QComboBox()
        for label, value in TILE_CHOICES:
            self.tile.addItem(label, value)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self._image_size: tuple[int, int] | None = None
        self._budget = describe(choose_device()).memory_budget
        self.run_button = QPushButton("Upscale")
        self.run_button.clicked.connect(lambda: self.run_requested.emit(self.params()))
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("", self.description)
        form.addRow("Scale", self.scale)
        form.addRow("Tiles", self.tile)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.estimate)
        layout.addWidget(self.run_button)
        layout.addStretch(1)
        self.model.changed.connect(self._suggest_scale)
        self.model.changed.connect(self.update_estimate)
        self.scale.valueChanged.connect(self.update_estimate)
        self.tile.currentIndexChanged.connect(self.update_estimate)

    def set_image_size(self, width: int, height: int) -> None:
        """The size of the image an upscale would start from (for the estimate)."""
        self._image_size = (width, height)
        self.update_estimate()

    def update_estimate(self, *_args) -> None:
        """Output size, memory and time before running; Run is disabled when it cannot fit."""
        if self._image_size is None:
            self.estimate.setText("")
            return
        try:
            spec = get_model(self.model.current(), "upscale")
        except StudioError:  # the artist's own weights: known only once loaded
            self.estimate.setText("Estimate after the weights are loaded.")
            self.run_button.setEnabled(True)
            return
        try:
            plan = plan_upscale(spec, *self._image_size, self.params(), self._budget)
        except StudioError as exc:
            self.estimate.setText(str(exc))
            self.run_button.setEnabled(False)
            return
        fits = plan.memory_bytes <= 2 * self._budget
        self.estimate.setText(("Result: " if fits else "Too large: ") + plan.summary())
        self.run_button.setEnabled(fits)

    def _suggest_scale(self, model_id: str) -> None:
        spec = next((m for m in all_models("upscale") if m.id == model_id), None)
        if spec is not None and spec.scale > 1:
            self.scale.setValue(spec.scale)

    def params(self) -> UpscaleParams:
        return UpscaleParams(
            model=self.model.current(), scale=self.scale.value(), tile=self.tile.currentData()
        )
