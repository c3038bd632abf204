"""The Mask panel: how the mask overlay looks, and the mask operations as buttons.

The buttons trigger the main window's Select-menu actions (one implementation, one undo step
each); the amounts for grow/shrink and feather are remembered in the settings.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.settings import Settings
from studio.ui.panels.tool_options import color_swatch


class MaskPanel(QWidget):
    """Emits ``look_changed`` after the overlay colour or opacity changed in the settings."""

    look_changed = Signal()
    amounts_changed = Signal()

    def __init__(
        self,
        settings: Settings,
        actions: dict[str, QAction],
        on_settings_changed: Callable[[], None],
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._saved = on_settings_changed
        self.visible = QCheckBox("Show mask (H)")
        self.visible.setChecked(True)
        actions["toggle_mask"].toggled.connect(self._mirror_visible)
        self.visible.toggled.connect(actions["toggle_mask"].setChecked)
        self.color = QPushButton()
        self.color.setToolTip("Colour of the mask overlay")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(5, 100)
        self.grow_px = QSpinBox()
        self.grow_px.setRange(1, 500)
        self.grow_px.setSuffix(" px")
        self.feather_px = QSpinBox()
        self.feather_px.setRange(1, 500)
        self.feather_px.setSuffix(" px")
        look = QFormLayout()
        look.addRow(self.visible)
        look.addRow("Colour", self.color)
        look.addRow("Overlay", self.opacity)
        ops = QGridLayout()
        for i, key in enumerate(("select_all", "clear_mask", "invert_mask", "fill_holes")):
            ops.addWidget(self._button(actions[key]), i // 2, i % 2)
        amounts = QFormLayout()
        grow_row = QHBoxLayout()
        grow_row.addWidget(self.grow_px)
        grow_row.addWidget(self._button(actions["grow"]))
        grow_row.addWidget(self._button(actions["shrink"]))
        feather_row = QHBoxLayout()
        feather_row.addWidget(self.feather_px)
        feather_row.addWidget(self._button(actions["feather"]))
        amounts.addRow("By", grow_row)
        amounts.addRow("Soften", feather_row)
        files = QHBoxLayout()
        files.addWidget(self._button(actions["import_mask"]))
        files.addWidget(self._button(actions["export_mask"]))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(look)
        layout.addLayout(ops)
        layout.addLayout(amounts)
        layout.addLayout(files)
        layout.addStretch(1)
        self.color.clicked.connect(self.choose_color)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.grow_px.valueChanged.connect(lambda v: self._set_amount(grow_px=v))
        self.feather_px.valueChanged.connect(lambda v: self._set_amount(feather_px=v))
        self.sync()

    @staticmethod
    def _button(action: QAction) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        return button

    def _mirror_visible(self, on: bool) -> None:
        with QSignalBlocker(self.visible):
            self.visible.setChecked(on)

    def _set(self, **values) -> None:
        for key, value in values.items():
            setattr(self.settings, key, value)
        self._saved()

    def _set_amount(self, **values) -> None:
        self._set(**values)
        self.amounts_changed.emit()

    def _on_opacity(self, value: int) -> None:
        self._set(mask_opacity=value / 100)
        self.look_changed.emit()

    def choose_color(self) -> None:
        color = QColorDialog.getColor(QColor(*self.settings.mask_color), self, "Mask colour")
        if color.isValid():
            self.set_color((color.red(), color.green(), color.blue()))

    def set_color(self, rgb: tuple[int, int, int]) -> None:
        self._set(mask_color=tuple(rgb))
        color_swatch(self.color, self.settings.mask_color)
        self.look_changed.emit()

    def sync(self) -> None:
        blockers = [QSignalBlocker(w) for w in (self.opacity, self.grow_px, self.feather_px)]
        color_swatch(self.color, self.settings.mask_color)
        self.opacity.setValue(round(self.settings.mask_opacity * 100))
        self.grow_px.setValue(self.settings.grow_px)
        self.feather_px.setValue(self.settings.feather_px)
        del blockers
