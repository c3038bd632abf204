"""The Inpaint panel: fill the painted mask (method, grow, feather, context) and extend the
canvas. The method is remembered in the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QRect, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.engine.jobs import InpaintParams, OutpaintParams, PromptedFill
from studio.engine.tasks.context import is_weight_path
from studio.engine.tasks.inpaint import margins_for_aspect, parse_aspect
from studio.models.registry import all_models
from studio.settings import Settings
from studio.task_kind import TaskKind
from studio.ui.panels.model_picker import ModelPicker, describe
from studio.ui.panels.panel_run import NothingToRun, PanelRun
from studio.ui.panels.sd_models import FOLDER_SETTING, entry_label, entry_tooltip


def _spin(lo: int, hi: int, value: int, suffix: str = " px") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin


#: what the window says instead of filling when no mask is painted
NOTHING_TO_FILL = (
    "Nothing to fill",
    "Paint a mask over what should be filled first "
    "(M picks the mask brush; the selection tools work too).",
)


class InpaintPanel(QWidget):
    """Emits ``run_requested(PanelRun)``: Fill with :class:`InpaintParams` and the mask; Extend
    with a function of the image size (aspect-ratio margins, see :meth:`outpaint_params`).

    ``settings.inpaint_method`` is the method shown first and is updated (then
    ``on_settings_changed`` called) whenever the artist picks another one.
    """

    run_requested = Signal(object)

    def __init__(
        self,
        settings: Settings | None = None,
        on_settings_changed: Callable[[], None] | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else Settings()
        self._saved = on_settings_changed or (lambda: None)
        self.method = ModelPicker(TaskKind.INPAINT)
        self._restore_method(self.settings.inpaint_method)
        self.method.changed.connect(self._remember_method)
        # descriptions differ in length: a steady height keeps the buttons below in place
        self._description_texts = {
            describe(spec.description, spec.speed_hint) for spec in all_models(TaskKind.INPAINT)
        }
        self.method.description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.method.changed.connect(self._steady_description_height)
        self.method.description.installEventFilter(self)
        self.grow = _spin(-32, 64, 4)
        self.grow.setToolTip("Grow the mask before filling (negative shrinks it)")
        self.feather = _spin(0, 64, 4)
        self.feather.setToolTip("Blend the fill into its surroundings over this many pixels")
        self.padding = _spin(8, 1024, 64)
        self.padding.setToolTip(
            "Surroundings the method sees around each masked area (more: better context, slower)"
        )
        self.run_button = QPushButton("Fill mask")
        self.run_button.setToolTip("Fill what the mask covers; nothing outside changes")
        self.run_button.clicked.connect(
            lambda: self.run_requested.emit(PanelRun(self.params(), mask=NOTHING_TO_FILL))
        )
        form = QFormLayout()
        form.addRow("Method", self.method)
        form.addRow("", self.method.description)
        form.addRow("Grow", self.grow)
        form.addRow("Feather", self.feather)
        form.addRow("Context", self.padding)

        self.extend = _spin(8, 4096, 128)
        self.sides = {
            side: QCheckBox(side.capitalize()) for side in ("left", "right", "top", "bottom")
        }
        self.sides["right"].setChecked(True)
        self.aspect = QComboBox()
        for label in ("The ticked sides", "1:1", "4:3", "3:2", "16:9", "3:4", "2:3", "9:16"):
            self.aspect.addItem(label if ":" not in label else f"To {label}", label)
        self.outpaint_button = QPushButton("Extend canvas")
        self.outpaint_button.clicked.connect(
            lambda: self.run_requested.emit(PanelRun(self._outpaint_for))
        )
        box = QGroupBox("Outpaint")
        grid = QGridLayout(box)
        grid.addWidget(self.sides["top"], 0, 1)
        grid.addWidget(self.sides["left"], 1, 0)
        grid.addWidget(self.extend, 1, 1)
        grid.addWidget(self.sides["right"], 1, 2)
        grid.addWidget(self.sides["bottom"], 2, 1)
        grid.addWidget(self.aspect, 3, 0, 1, 3)
        grid.addWidget(self._prompted_box(), 4, 0, 1, 3)
        grid.addWidget(self.outpaint_button, 5, 0, 1, 3)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addWidget(box)
        layout.addStretch(1)

    def _prompted_box(self) -> QGroupBox:
        """The "Extend with a prompt" group: one of the artist's SD models and a prompt."""
        self.prompted = QCheckBox("Extend with a prompt")
        self.prompted.setToolTip(
            "Paint the new area with one of your Stable Diffusion models from a prompt"
        )
        self.prompted_model = QComboBox()
        self.prompted_model.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.prompted_prompt = QLineEdit()
        self.prompted_prompt.setPlaceholderText("What the new area shows")
        self.prompted.toggled.connect(self._prompted_toggled)
        self._prompted_toggled(False)
        box = QGroupBox("Extend with a prompt")
        form = QFormLayout(box)
        form.addRow(self.prompted)
        form.addRow("Model", self.prompted_model)
        form.addRow("Prompt", self.prompted_prompt)
        return box

    def _prompted_toggled(self, checked: bool) -> None:
        if checked:
            self.refresh_prompted_models()  # listed when wanted: models added since show up
        self.prompted_model.setEnabled(checked)
        self.prompted_prompt.setEnabled(checked)

    def refresh_prompted_models(self) -> None:
        """List the artist's Stable Diffusion checkpoints (headers only); keeps the choice."""
        from studio.models.sd.discovery import CHECKPOINT, list_sd_models
        from studio.paths import user_models_dir

        keep = self.prompted_model.currentData()
        folder = str(getattr(self.settings, FOLDER_SETTING, "") or "")
        other = Path(folder).expanduser() if folder else None
        try:
            entries = list_sd_models(user_models_dir(), other)
        except OSError:
            entries = []
        self.prompted_model.clear()
        for entry in (e for e in entries if e.kind == CHECKPOINT):
            self.prompted_model.addItem(entry_label(entry), str(entry.path))
            index = self.prompted_model.count() - 1
            self.prompted_model.setItemData(
                index, entry_tooltip(entry), Qt.ItemDataRole.ToolTipRole
            )
        if not self.prompted_model.count():
            self.prompted_model.addItem("No Stable Diffusion models (see Generate)", None)
        index = self.prompted_model.findData(keep) if keep else -1
        self.prompted_model.setCurrentIndex(max(index, 0))

    def _prompted_fill(self) -> PromptedFill | None:
        model = self.prompted_model.currentData()
        if not self.prompted.isChecked() or not model:
            return None
        return PromptedFill(model=model, prompt=self.prompted_prompt.text().strip())

    def _restore_method(self, method: str) -> None:
        self.method.select(Settings().inpaint_method)  # a gone model or file falls back to it
        if is_weight_path(method):
            if Path(method).is_file():
                self.method.add_file(method)
        else:
            self.method.select(method)

    def _remember_method(self, method: str) -> None:
        if method and method != self.settings.inpaint_method:
            self.settings.inpaint_method = method
            self._saved()

    def _steady_description_height(self, *_args) -> None:
        """Fix the description's height to the tallest text any method shows at this width."""
        label = self.method.description
        self._description_texts.add(label.text())
        width = label.width() - 2 * label.margin()
        metrics = label.fontMetrics()
        flags = Qt.TextFlag.TextWordWrap
        tallest = max(
            metrics.boundingRect(QRect(0, 0, max(width, 1), 100_000), flags, text).height()
            for text in self._description_texts
        )
        label.setFixedHeight(tallest + 2 * label.margin())

    def eventFilter(self, watched, event) -> bool:
        resized = watched is self.method.description and event.type() == QEvent.Type.Resize
        if resized and event.size().width() != event.oldSize().width():
            self._steady_description_height()
        return super().eventFilter(watched, event)

    def params(self) -> InpaintParams:
        return InpaintParams(
            method=self.method.current(),
            grow=self.grow.value(),
            feather=self.feather.value(),
            padding=self.padding.value(),
        )

    def _outpaint_for(self, size: tuple[int, int]) -> OutpaintParams:
        params = self.outpaint_params(size)
        if self.prompted.isChecked() and params.prompted is None:
            raise NothingToRun(
                "No Stable Diffusion model",
                "Extending with a prompt needs one of your Stable Diffusion models: add one "
                '(Generate, Open… or Models folder…) or untick "Extend with a prompt".',
            )
        if not any((params.left, params.right, params.top, params.bottom)):
            raise NothingToRun(
                "Nothing to extend",
                "Tick a side, or pick an aspect ratio the image does not have yet.",
            )
        return params

    def outpaint_params(self, size: tuple[int, int] | None = None) -> OutpaintParams:
        """Margins from the ticked sides, or from the aspect ratio and the image ``size``."""
        n = self.extend.value()
        amounts = {side: (n if box.isChecked() else 0) for side, box in self.sides.items()}
        aspect = self.aspect.currentData()
        if ":" in aspect and size is not None:
            amounts = margins_for_aspect(*size, parse_aspect(aspect))
        method = self.method.current()
        feather = max(4, self.feather.value())
        prompted = self._prompted_fill()
        return OutpaintParams(method=method, feather=feather, prompted=prompted, **amounts)
