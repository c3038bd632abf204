"""The Generate panel: seeds, count, truncation, strip or variations, optional upscale; results
stream in as thumbnails, and the one the artist picks lands on Accept."""

from __future__ import annotations

import random

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.engine.messages import TileReady
from studio.engine.tasks.generate import GenerateParams
from studio.models.registry import all_models
from studio.task_kind import TaskKind
from studio.ui.panels.model_picker import ModelPicker
from studio.ui.panels.panel_run import PanelRun
from studio.ui.qimage import numpy_to_qimage

MODES = (
    ("Grid of samples", "samples"),
    ("Strip between two seeds", "interpolate"),
    ("Variations of the image", "variations"),
)


class GeneratePanel(QWidget):
    """Emits ``run_requested(PanelRun)`` with :class:`GenerateParams` (on a new white canvas
    when no document is open); ``picked_changed(int)`` when a cell is chosen."""

    run_requested = Signal(object)
    picked_changed = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.model = ModelPicker(TaskKind.GENERATE)
        self.mode = QComboBox()
        for label, value in MODES:
            self.mode.addItem(label, value)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.dice = QPushButton("New seed")
        self.dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        self.seed_b = QSpinBox()
        self.seed_b.setRange(0, 2**31 - 1)
        self.seed_b.setValue(1)
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(16)
        self.truncation = QDoubleSpinBox()
        self.truncation.setRange(0.1, 2.0)
        self.truncation.setSingleStep(0.1)
        self.truncation.setValue(1.0)
        self.truncation.setToolTip("Below 1: safer, more typical pictures; above 1: wilder")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 3.0)
        self.strength.setSingleStep(0.1)
        self.strength.setValue(0.5)
        self.upscale = QComboBox()
        self.upscale.addItem("No (64 px)", None)
        for spec in all_models(TaskKind.UPSCALE):
            if spec.id in (
                "lanczos",
                "studio-photo-x4",
                "realesr-animevideov3",
                "realesrgan-x4plus-anime",
            ):
                self.upscale.addItem(f"with {spec.name}", spec.id)
        self.size = QComboBox()
        for side in (128, 256, 512):
            self.size.addItem(f"{side} px", side)
        self.size.setCurrentIndex(1)
        self.run_button = QPushButton("Generate")
        self.run_button.clicked.connect(self._run)
        self.results = QListWidget()
        self.results.setViewMode(QListWidget.ViewMode.IconMode)
        self.results.setIconSize(QSize(56, 56))
        self.results.setMovement(QListWidget.Movement.Static)
        self.results.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.results.setMinimumHeight(150)
        self.results.currentRowChanged.connect(self.picked_changed)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("", self.model.description)
        form.addRow("Make", self.mode)
        form.addRow("Seed", seed_row)
        form.addRow("To seed", self.seed_b)
        form.addRow("How many", self.count)
        form.addRow("Truncation", self.truncation)
        form.addRow("Variation", self.strength)
        form.addRow("Enlarge", self.upscale)
        form.addRow("Size", self.size)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addWidget(self.results, 1)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self._mode_changed()
        self.upscale.currentIndexChanged.connect(self._upscale_changed)
        self._upscale_changed()

    def _upscale_changed(self) -> None:
        self.size.setEnabled(self.upscale.currentData() is not None)

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        self.seed_b.setEnabled(mode == "interpolate")
        self.strength.setEnabled(mode == "variations")
        if mode == "variations":
            self.model.select("studio-emoji-vae")

    def params(self) -> GenerateParams:
        return GenerateParams(
            model=self.model.current(),
            seed=self.seed.value(),
            count=self.count.value(),
            truncation=self.truncation.value(),
            mode=self.mode.currentData(),
            seed_b=self.seed_b.value(),
            strength=self.strength.value(),
            upscale_model=self.upscale.currentData(),
            out_size=self.size.currentData(),
        )

    def _run(self) -> None:
        params = self.params()
        self.clear_results()  # the cells of the previous run
        variations = params.mode == "variations"  # of the picture: its colours only
        self.run_requested.emit(PanelRun(params, image=variations, rgb_only=True, new_canvas=True))

    # -- results -------------------------------------------------------------------------------
    def clear_results(self) -> None:
        self.results.clear()

    def add_result(self, msg: TileReady) -> None:
        """A finished cell from the engine (in stream order: cell i is row i)."""
        pixels = np.ascontiguousarray(msg.pixels[:, :, :3])
        item = QListWidgetItem(QIcon(QPixmap.fromImage(numpy_to_qimage(pixels))), "")
        item.setData(Qt.ItemDataRole.UserRole, (msg.rect.x, msg.rect.y, msg.rect.w, msg.rect.h))
        self.results.addItem(item)
        if self.results.count() == 1:
            self.results.setCurrentRow(0)

    def picked(self) -> int:
        return max(0, self.results.currentRow())
