"""The Stylize panel: a grid of style thumbnails (Ctrl-click to blend), painting presets, any
picture as the style, strength, colour preservation, working resolution and mask-only."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProxyStyle,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from studio.engine.jobs import IMAGE_STYLE, StylizeParams
from studio.errors import StudioError
from studio.imageio import read_image
from studio.models.style_names import STYLES
from studio.paths import resources_dir
from studio.ui.panels.panel_run import PanelRun

RESOLUTIONS = (
    ("512 px (bold strokes)", 512),
    ("1024 px", 1024),
    ("2048 px", 2048),
    ("Full size (fine strokes)", 0),
)
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"
ROLE_ID = Qt.ItemDataRole.UserRole


class JumpToClickStyle(QProxyStyle):
    """A left click on a slider's groove jumps to that spot instead of stepping a page."""

    def styleHint(self, hint, option=None, widget=None, return_data=None) -> int:
        if hint == QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return Qt.MouseButton.LeftButton.value
        return super().styleHint(hint, option, widget, return_data)


def _presets() -> tuple:
    try:
        from studio.models.style_presets import painting_presets
    except ImportError:  # presets are optional data
        return ()
    return painting_presets()


#: what the window says instead of stylizing when "Only inside the mask" has no mask to use
NO_MASK = ("No mask", "Paint a mask where the style should go, or untick “Only inside the mask”.")


class StylizePanel(QWidget):
    """Emits ``run_requested(PanelRun)`` with :class:`StylizeParams` (and the mask when
    "Only inside the mask" is ticked)."""

    run_requested = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(64, 64))
        self.grid.setGridSize(QSize(84, 96))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setMovement(QListWidget.Movement.Static)
        self.grid.setWordWrap(True)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setMinimumHeight(230)
        for _index, style_id, name, description in STYLES:
            self._add(style_id, name, description, resources_dir() / "styles" / f"{style_id}.png")
        for preset in _presets():
            self._add(
                preset.id,
                preset.title,
                preset.credit,
                resources_dir() / "paintings" / f"{preset.id}.png",
            )
        self.grid.setCurrentRow(next(i for i, s in enumerate(STYLES) if s[1] == "starry-night"))
        self.picture_button = QPushButton("Style from a picture…")
        self.picture_button.clicked.connect(self._choose_picture)
        self.style_image = None
        self.picture_label = QLabel()
        self.picture_label.setWordWrap(True)
        self.selection_label = QLabel()
        self.selection_label.setWordWrap(True)
        self.selection_label.setStyleSheet("color: palette(mid);")
        self.grid.itemSelectionChanged.connect(self._on_selection)

        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(100)
        # a new instance of the application's style: a proxy owns (and deletes) its base
        self._slider_style = JumpToClickStyle(QApplication.style().name())
        self._slider_style.setParent(self.strength)
        self.strength.setStyle(self._slider_style)
        self.strength_value = QSpinBox()
        self.strength_value.setRange(0, 100)
        self.strength_value.setSuffix(" %")
        self.strength_value.setValue(self.strength.value())
        self.strength_value.setToolTip("0 % keeps the original, 100 % is the full style")
        self.strength.valueChanged.connect(self.strength_value.setValue)
        self.strength_value.valueChanged.connect(self.strength.setValue)
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.strength_value)
        self.preserve = QCheckBox("Keep the original colours")
        self.resolution = QComboBox()
        for label, value in RESOLUTIONS:
            self.resolution.addItem(label, value)
        self.resolution.setCurrentIndex(1)
        self.in_mask = QCheckBox("Only inside the mask")
        self.feather = QSpinBox()
        self.feather.setRange(0, 128)
        self.feather.setValue(8)
        self.feather.setSuffix(" px")
        self.run_button = QPushButton("Stylize")
        self.run_button.clicked.connect(self._emit)
        form = QFormLayout()
        form.addRow("Strength", strength_row)
        form.addRow("", self.preserve)
        form.addRow("Work at", self.resolution)
        form.addRow("", self.in_mask)
        form.addRow("Mask edge", self.feather)
        layout = QVBoxLayout(self)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.selection_label)
        layout.addWidget(self.picture_button)
        layout.addWidget(self.picture_label)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        self._describe()

    def _add(self, style_id: str, name: str, tooltip: str, icon: Path) -> None:
        item = QListWidgetItem(QIcon(QPixmap(str(icon))), name)
        item.setData(ROLE_ID, style_id)
        item.setToolTip(tooltip)
        self.grid.addItem(item)

    def selected_ids(self) -> list[str]:
        return [item.data(ROLE_ID) for item in self.grid.selectedItems()]

    def _describe(self) -> None:
        ids = self.selected_ids()
        if self.style_image is not None:
            text = "Style: the chosen picture (click a thumbnail to go back)."
        elif len(ids) > 1:
            text = "Blend of " + ", ".join(ids) + " (equal weights; Ctrl-click to change)."
        elif ids:
            text = self.grid.selectedItems()[0].toolTip()
        else:
            text = "Pick a style (Ctrl-click several to blend them)."
        self.selection_label.setText(text)

    def _choose_picture(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Take the style from", "", IMAGE_FILTER)
        if path:
            self.use_picture(path)

    def use_picture(self, path: str) -> bool:
        try:
            self.style_image = read_image(path).pixels
        except StudioError as exc:
            self.picture_label.setText(str(exc))
            return False
        self.picture_label.setText(f"Style picture: {Path(path).name}")
        self.grid.clearSelection()  # an empty selection keeps the picture
        self._describe()
        return True

    def _on_selection(self) -> None:
        if self.grid.selectedItems():  # picking a thumbnail replaces the picture
            self.style_image = None
            self.picture_label.setText("")
        self._describe()

    def params(self) -> StylizeParams:
        common = {
            "strength": self.strength.value() / 100,
            "feather": self.feather.value(),
            "preserve_colors": self.preserve.isChecked(),
            "resolution": self.resolution.currentData(),
        }
        if self.style_image is not None:
            return StylizeParams(style=IMAGE_STYLE, style_image=self.style_image, **common)
        ids = self.selected_ids() or ["starry-night"]
        builtin = {s[1] for s in STYLES}
        if len(ids) > 1 and all(i in builtin for i in ids):
            return StylizeParams(mix=tuple((i, 1.0 / len(ids)) for i in ids), **common)
        return StylizeParams(style=ids[0], **common)

    def _emit(self) -> None:
        mask = NO_MASK if self.in_mask.isChecked() else None
        self.run_requested.emit(PanelRun(self.params(), mask=mask))
