"""The Tools panel: tool buttons, brush settings of the current tool, selection mode.

Values live in :class:`studio.ui.tools.ToolBox` (and through it in the settings file); the
panel mirrors them and writes changes back, blocking its own signals while it updates.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.document.shapes import Mode
from studio.ui.tools import (
    BRUSH,
    ELLIPSE,
    ERASER,
    LASSO,
    MAGIC_WAND,
    MASK_BRUSH,
    MASK_ERASER,
    OBJECT_SELECT,
    POLYGON,
    RECT,
    TOOL_NAMES,
    ToolBox,
)

MODES = (
    (Mode.REPLACE, "Replace"),
    (Mode.ADD, "Add (Shift)"),
    (Mode.SUBTRACT, "Subtract (Alt or Ctrl)"),
    (Mode.INTERSECT, "Intersect (Shift+Alt)"),
)


def color_swatch(button: QPushButton, rgb: tuple[int, int, int]) -> None:
    r, g, b = rgb
    text = "white" if (r * 299 + g * 587 + b * 114) / 1000 < 128 else "black"
    button.setStyleSheet(f"background: rgb({r},{g},{b}); color: {text};")
    button.setText(f"#{r:02x}{g:02x}{b:02x}")


class ToolOptionsPanel(QWidget):
    def __init__(self, box: ToolBox, tool_actions: dict[str, QAction], parent=None) -> None:
        super().__init__(parent)
        self.box = box
        grid = QGridLayout()
        for i, tool_id in enumerate(TOOL_NAMES):
            button = QToolButton()
            button.setDefaultAction(tool_actions[tool_id])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setMinimumWidth(100)
            grid.addWidget(button, i // 2, i % 2)
        self.size = QDoubleSpinBox()
        self.size.setRange(1, 1000)
        self.size.setDecimals(1)
        self.size.setSuffix(" px")
        self.size.setToolTip("Brush diameter ([ and ] change it)")
        self.hardness = self._slider("Hardness: 100 % = a crisp edge")
        self.opacity = self._slider("Opacity of one stroke (overlapping dabs do not build up)")
        self.spacing = self._slider("Distance between dabs, in % of the size", 2, 200)
        self.color = QPushButton()
        self.color.setToolTip("Paint colour (Alt+click on the canvas picks one)")
        self.pressure_size = QCheckBox("Pressure → size")
        self.pressure_opacity = QCheckBox("Pressure → opacity")
        self.brush_box = QGroupBox("Brush")
        form = QFormLayout(self.brush_box)
        form.addRow("Size", self.size)
        form.addRow("Hardness", self.hardness)
        form.addRow("Opacity", self.opacity)
        form.addRow("Spacing", self.spacing)
        form.addRow("Colour", self.color)
        form.addRow(self.pressure_size)
        form.addRow(self.pressure_opacity)
        self.mode = QComboBox()
        for mode, label in MODES:
            self.mode.addItem(label, mode.value)
        self.select_box = QGroupBox("Selection")
        QFormLayout(self.select_box).addRow("Mode", self.mode)
        self._build_picture_select()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid)
        layout.addWidget(self.brush_box)
        layout.addWidget(self.select_box)
        layout.addWidget(self.wand_box)
        layout.addWidget(self.object_box)
        layout.addStretch(1)
        self.size.valueChanged.connect(lambda v: box.set_brush(size=v))
        self.hardness.valueChanged.connect(lambda v: box.set_brush(hardness=v / 100))
        self.opacity.valueChanged.connect(lambda v: box.set_brush(opacity=max(v, 1) / 100))
        self.spacing.valueChanged.connect(lambda v: box.set_brush(spacing=v / 100))
        self.pressure_size.toggled.connect(lambda on: self._set_pressure(pressure_size=on))
        self.pressure_opacity.toggled.connect(lambda on: self._set_pressure(pressure_opacity=on))
        self.color.clicked.connect(self.choose_color)
        self.mode.currentIndexChanged.connect(lambda _i: box.set_mode(self.mode.currentData()))
        box.tool_changed.connect(lambda _t: self.sync())
        box.brush_changed.connect(self.sync)
        box.mode_changed.connect(lambda _m: self.sync())
        self.sync()

    def _build_picture_select(self) -> None:
        """Options of the magic wand and the object-select tool's Apply / Cancel."""
        box = self.box
        self.tolerance = QSpinBox()
        self.tolerance.setRange(0, 100)
        self.tolerance.setToolTip(
            "Largest colour difference still selected (CIE L*a*b* distance): "
            "0 = the clicked colour only, 100 = black against white"
        )
        self.contiguous = QCheckBox("Contiguous")
        self.contiguous.setToolTip("Only the connected area around the click (off: every match)")
        self.wand_box = QGroupBox("Magic wand")
        wand_form = QFormLayout(self.wand_box)
        wand_form.addRow("Tolerance", self.tolerance)
        wand_form.addRow(self.contiguous)
        self.tolerance.valueChanged.connect(lambda v: setattr(box, "wand_tolerance", float(v)))
        self.contiguous.toggled.connect(lambda on: setattr(box, "wand_contiguous", on))
        tool = box.tools[OBJECT_SELECT]
        self.object_apply = QPushButton("Apply (Enter)")
        self.object_apply.setToolTip("Write the object found into the mask")
        self.object_cancel = QPushButton("Cancel (Esc)")
        self.object_apply.clicked.connect(tool.apply)
        self.object_cancel.clicked.connect(tool.cancel)
        self.object_box = QGroupBox("Object select")
        help_text = QLabel(
            "Drag a box around the object. Then drag over parts it missed, "
            "or with Alt or Ctrl over parts that are not the object."
        )
        help_text.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.object_apply)
        buttons.addWidget(self.object_cancel)
        object_layout = QVBoxLayout(self.object_box)
        object_layout.addWidget(help_text)
        object_layout.addLayout(buttons)
        box.selection_pending.connect(self._object_pending)
        self._object_pending(False)

    def _object_pending(self, pending: bool) -> None:
        self.object_apply.setEnabled(pending)
        self.object_cancel.setEnabled(pending)

    def _slider(self, tip: str, lo: int = 0, hi: int = 100) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(lo, hi)
        s.setToolTip(tip)
        return s

    def _set_pressure(self, **flags: bool) -> None:
        for group in ("paint", "mask"):  # pressure is a property of the pen, not the brush
            self.box.set_brush(group, **flags)

    def choose_color(self) -> None:
        r, g, b = self.box.brush("paint").color
        color = QColorDialog.getColor(QColor(r, g, b), self, "Paint colour")
        if color.isValid():
            self.box.set_brush("paint", color=(color.red(), color.green(), color.blue()))

    def sync(self) -> None:
        """Show the current tool's brush (paint or mask) and the selection mode."""
        widgets = (
            self.size,
            self.hardness,
            self.opacity,
            self.spacing,
            self.pressure_size,
            self.pressure_opacity,
            self.mode,
            self.tolerance,
            self.contiguous,
        )
        blockers = [QSignalBlocker(w) for w in widgets]
        brush = self.box.brush()
        current = self.box.current
        on_mask = current in (MASK_BRUSH, MASK_ERASER)
        self.brush_box.setVisible(current in (BRUSH, ERASER, MASK_BRUSH, MASK_ERASER))
        self.select_box.setVisible(
            current in (RECT, ELLIPSE, LASSO, POLYGON, OBJECT_SELECT, MAGIC_WAND)
        )
        self.wand_box.setVisible(current == MAGIC_WAND)
        self.object_box.setVisible(current == OBJECT_SELECT)
        self.tolerance.setValue(round(self.box.wand_tolerance))
        self.contiguous.setChecked(self.box.wand_contiguous)
        self.brush_box.setTitle("Mask brush" if on_mask else "Brush")
        self.size.setValue(brush.size)
        self.hardness.setValue(round(brush.hardness * 100))
        self.opacity.setValue(round(brush.opacity * 100))
        self.spacing.setValue(round(brush.spacing * 100))
        self.pressure_size.setChecked(brush.pressure_size)
        self.pressure_opacity.setChecked(brush.pressure_opacity)
        color_swatch(self.color, self.box.brush("paint").color)
        self.color.setVisible(not on_mask)
        self.brush_box.layout().labelForField(self.color).setVisible(not on_mask)
        self.mode.setCurrentIndex(self.mode.findData(self.box.mode.value))
        del blockers
