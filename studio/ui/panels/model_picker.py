"""A model combo box for one task: registry models plus weight files the artist loads."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from studio.models.registry import all_models
from studio.task_kind import TaskKind

WEIGHT_FILTER = "Weights (*.safetensors *.pth *.pt *.ckpt);;All files (*)"


def describe(description: str, speed_hint: str) -> str:
    """The model's description plus its speed, unless the description already says it."""
    if not speed_hint or speed_hint.lower().strip(" .") in description.lower():
        return description
    return f"{description} Speed: {speed_hint}."


class ModelPicker(QWidget):
    """Combo of ``task`` models; "Load weights…" adds a file entry (its data is the path)."""

    changed = Signal(str)

    def __init__(self, task: TaskKind, parent=None) -> None:
        super().__init__(parent)
        self.task = task
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        for spec in all_models(task):
            enlarges = task == TaskKind.UPSCALE and spec.scale > 1
            label = spec.name + (f" ×{spec.scale}" if enlarges else "")
            self.combo.addItem(label, spec.id)
            self.combo.setItemData(
                self.combo.count() - 1, spec.description, Qt.ItemDataRole.ToolTipRole
            )
        self.load_button = QPushButton("Load weights…")
        self.load_button.setToolTip("Use your own .safetensors or .pth file (read safely)")
        self.load_button.clicked.connect(self._choose_file)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(mid);")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.load_button)
        self.combo.currentIndexChanged.connect(self._on_change)
        self._on_change()

    def current(self) -> str:
        """A registry id or a weight-file path."""
        return self.combo.currentData()

    def add_file(self, path: str) -> None:
        index = self.combo.findData(path)
        if index < 0:
            self.combo.addItem(f"File: {Path(path).name}", path)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def select(self, model_id: str) -> None:
        index = self.combo.findData(model_id)
        if index >= 0:
            self.combo.setCurrentIndex(index)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model weights", "", WEIGHT_FILTER)
        if path:
            self.add_file(path)

    def _on_change(self) -> None:
        value = self.current() or ""
        spec = next((m for m in all_models(self.task) if m.id == value), None)
        if spec is None:
            text = f"Your weights: {Path(value).name}. The architecture is detected on Run."
        else:
            text = describe(spec.description, spec.speed_hint)
        self.description.setText(text)
        self.changed.emit(value)
