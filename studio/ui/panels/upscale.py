"""The Upscale panel: model picker (with description, speed hint, own weights), scale, tiles.

The estimate uses the memory budget the engine published (:class:`EngineReady`), and the panel
says which precision and compile mode the chosen model runs in on this machine: measured by
the last upscale, or found in the engine's report. Nothing here probes the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Signal, Slot
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
from studio.engine.messages import JobFinished
from studio.engine.planning import plan_upscale
from studio.engine.report import DEFAULT_BUDGET, EngineReady
from studio.errors import StudioError
from studio.models.registry import all_models, get_model
from studio.task_kind import TaskKind
from studio.ui.panels.model_picker import ModelPicker
from studio.ui.panels.panel_run import PanelRun

TILE_CHOICES = (
    ("Automatic", None),
    ("No tiling", 0),
    ("128 px", 128),
    ("256 px", 256),
    ("512 px", 512),
    ("1024 px", 1024),
)


class UpscalePanel(QWidget):
    """Emits ``run_requested(PanelRun)`` with :class:`UpscaleParams` when the artist presses
    Upscale."""

    run_requested = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.model = ModelPicker(TaskKind.UPSCALE)
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
        self.variant = QLabel()
        self.variant.setWordWrap(True)
        self._image_size: tuple[int, int] | None = None
        self._budget = DEFAULT_BUDGET  # until the engine reports its device
        self._tuned: Mapping[str, str] = {}  # model id -> variant, from the engine's report
        self._ran: dict[str, str] = {}  # model id -> variant of its last finished upscale
        self.run_button = QPushButton("Upscale")
        self.run_button.clicked.connect(lambda: self.run_requested.emit(PanelRun(self.params())))
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("", self.description)
        form.addRow("Scale", self.scale)
        form.addRow("Tiles", self.tile)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.estimate)
        layout.addWidget(self.variant)
        layout.addWidget(self.run_button)
        layout.addStretch(1)
        self.model.changed.connect(self._suggest_scale)
        self.model.changed.connect(self.update_estimate)
        self.model.changed.connect(self._show_variant)
        self.scale.valueChanged.connect(self.update_estimate)
        self.tile.currentIndexChanged.connect(self.update_estimate)

    def attach_engine(self, engine) -> None:
        """Follow an :class:`~studio.engine.thread.EngineThread`: its device report and the
        variant each finished upscale ran in (delivered on the GUI thread: slots of this
        widget)."""
        engine.ready.connect(self.set_engine_report)
        engine.message.connect(self.show_job_info)
        if engine.report is not None:
            self.set_engine_report(engine.report)

    @Slot(object)
    def set_engine_report(self, report: EngineReady) -> None:
        """The engine's memory budget and measured variants replace the defaults."""
        self._budget = report.memory_budget
        self._tuned = dict(report.tuned)
        self.update_estimate()
        self._show_variant()

    @Slot(object)
    def show_job_info(self, msg: object) -> None:
        """Remember the variant a finished upscale ran in (``JobFinished.info["variant"]``)."""
        if not isinstance(msg, JobFinished):
            return
        info: Mapping[str, Any] = msg.info
        if "variant" in info and "model" in info:
            self._ran[str(info["model"])] = str(info["variant"])
            self._show_variant()

    def _show_variant(self, *_args) -> None:
        model_id = self.model.current()
        variant = self._ran.get(model_id) or self._tuned.get(model_id)
        self.variant.setText(f"Runs as {variant} on this machine." if variant else "")

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
            spec = get_model(self.model.current(), TaskKind.UPSCALE)
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
        spec = next((m for m in all_models(TaskKind.UPSCALE) if m.id == model_id), None)
        if spec is not None and spec.scale > 1:
            self.scale.setValue(spec.scale)

    def params(self) -> UpscaleParams:
        return UpscaleParams(
            model=self.model.current(), scale=self.scale.value(), tile=self.tile.currentData()
        )
