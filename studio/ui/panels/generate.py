"""The Generate panel: a prompt (Ctrl+Enter runs), the model (Studio's text-to-image model, the
emoji GAN and VAE, the artist's Stable Diffusion files with their LoRAs), seed, steps, guidance,
sampler, how many and the size; img2img from the canvas or the selection with a strength; a
prompted inpaint of the mask; Describe, whose captions become the prompt with a click.

Each step's preview streams onto the canvas (the controller draws every tile); the finished
grid's cells come in here as thumbnails, and the one the artist picks lands on Accept. Options
a model cannot take are hidden: prompt controls for the GAN/VAE, truncation for the others.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.engine.jobs import GUIDANCE_RANGE, STEPS_RANGE
from studio.engine.messages import TileReady
from studio.engine.tasks.generate import GenerateParams
from studio.models.registry import all_models
from studio.models.samplers import sampler_names
from studio.task_kind import TaskKind
from studio.ui.panels.panel_run import PanelRun
from studio.ui.panels.prompt_box import CaptionList, DescribeClient, PromptEdit
from studio.ui.panels.sd_models import NOISE, SD, GenerateModelList
from studio.ui.qimage import numpy_to_qimage

MODES = (
    ("Grid of samples", "samples"),
    ("Strip between two seeds", "interpolate"),
    ("Variations of the image", "variations"),
)
#: image sides offered for Studio's 64 px text model (larger ones through an upscaler)
TEXT_SIZES = ((0, "64 px (native)"), (128, "128 px"), (256, "256 px"), (512, "512 px"))
#: and for Stable Diffusion, which works at any multiple of 8
SD_SIZES = (
    (0, "The model's own"),
    *((side, f"{side} px") for side in (256, 384, 512, 768, 1024)),
)
NO_MASK = ("Nothing to repaint", "Paint the mask over what the prompt should repaint first.")


class GeneratePanel(QWidget):
    """Emits ``run_requested(PanelRun)`` with :class:`GenerateParams` (on a new white canvas
    when no document is open), ``describe_requested()`` for Describe, and ``picked_changed(int)``
    when a cell is chosen."""

    run_requested = Signal(object)
    describe_requested = Signal()
    picked_changed = Signal(int)

    def __init__(self, settings=None, save: Callable[[], None] | None = None, parent=None):
        super().__init__(parent)
        self.prompt = PromptEdit("What to draw — Ctrl+Enter generates", 3)
        self.negative = PromptEdit("What to keep out (negative prompt)", 2)
        self.describe_button = QPushButton("Describe the picture")
        self.describe_button.setToolTip(
            "Captions for the canvas, or the selection's box; click one to use it as the prompt"
        )
        self.captions = CaptionList()
        self.describer = DescribeClient(self)
        self.models = GenerateModelList(settings, save)
        self.mode = QComboBox()
        for label, value in MODES:
            self.mode.addItem(label, value)
        self.from_canvas = QCheckBox("From the canvas / selection")
        self.from_canvas.setToolTip(
            "img2img: start from the picture (the selection's box when there is one)"
        )
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(60)
        self.strength_label = QLabel()
        self.strength.setToolTip("0 keeps the picture, 1 repaints it entirely")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1 - 256)
        self.dice = QPushButton("New seed")
        self.dice.setToolTip("A random seed")
        self.dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31 - 256)))
        self.seed_b = QSpinBox()
        self.seed_b.setRange(0, 2**31 - 1)
        self.seed_b.setValue(1)
        self.steps = QSpinBox()
        self.steps.setRange(*STEPS_RANGE)
        self.steps.setValue(20)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(*GUIDANCE_RANGE)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(5.0)
        self.guidance.setToolTip("How closely to follow the prompt (1 or less: ignore it)")
        self.sampler = QComboBox()
        for name in sampler_names():
            self.sampler.addItem(name, name)
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(4)
        self.image_size = QComboBox()
        self.truncation = QDoubleSpinBox()
        self.truncation.setRange(0.1, 2.0)
        self.truncation.setSingleStep(0.1)
        self.truncation.setValue(1.0)
        self.truncation.setToolTip("Below 1: safer, more typical pictures; above 1: wilder")
        self.variation = QDoubleSpinBox()
        self.variation.setRange(0.0, 3.0)
        self.variation.setSingleStep(0.1)
        self.variation.setValue(0.5)
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
        self.run_button.setToolTip("Generate (Ctrl+Enter in the prompt)")
        self.inpaint_button = QPushButton("Inpaint the mask with the prompt")
        self.inpaint_button.setToolTip("Repaint the masked area from the prompt; the rest stays")
        self.results = QListWidget()
        self.results.setViewMode(QListWidget.ViewMode.IconMode)
        self.results.setIconSize(QSize(56, 56))
        self.results.setMovement(QListWidget.Movement.Static)
        self.results.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.results.setMinimumHeight(120)
        self._layout()
        self._grid_run = True  # the last run makes cells to pick from (not a region edit)
        self._connect()
        self._model_changed()
        self._mode_changed()
        self._upscale_changed()

    def _layout(self) -> None:
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.strength_label)
        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        form.addRow("Negative", self.negative)
        form.addRow("", self.describe_button)
        form.addRow("", self.captions)
        form.addRow("Model", self.models)
        form.addRow("Make", self.mode)
        form.addRow("", self.from_canvas)
        form.addRow("Strength", strength_row)
        self._strength_row = strength_row
        form.addRow("Seed", seed_row)
        form.addRow("To seed", self.seed_b)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Sampler", self.sampler)
        form.addRow("How many", self.count)
        form.addRow("Size", self.image_size)
        form.addRow("Truncation", self.truncation)
        form.addRow("Variation", self.variation)
        form.addRow("Enlarge", self.upscale)
        form.addRow("Enlarge to", self.size)
        self.form = form
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(form)
        column.addWidget(self.run_button)
        column.addWidget(self.inpaint_button)
        column.addStretch(1)
        scroll = QScrollArea()  # a short dock scrolls rather than squeezing rows together
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 3)
        layout.addWidget(self.results, 1)

    def _connect(self) -> None:
        self.run_button.clicked.connect(self._run)
        self.inpaint_button.clicked.connect(self._inpaint)
        self.prompt.submitted.connect(self._run)
        self.negative.submitted.connect(self._run)
        self.describe_button.clicked.connect(self.describe_requested)
        self.captions.picked.connect(self.prompt.setPlainText)
        self.describer.captions.connect(self.show_captions)
        self.describer.busy_changed.connect(self._describing)
        self.models.changed.connect(self._model_changed)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.upscale.currentIndexChanged.connect(self._upscale_changed)
        self.from_canvas.toggled.connect(self._from_canvas_changed)
        self.strength.valueChanged.connect(self._strength_changed)
        self.results.currentRowChanged.connect(self.picked_changed)
        self._strength_changed()

    def attach_engine(self, engine) -> None:
        """Describe runs on ``engine`` (an :class:`~studio.engine.thread.EngineThread`)."""
        self.describer.attach_engine(engine)

    # -- what is shown for which model -----------------------------------------------------------
    @property
    def model(self) -> GenerateModelList:
        return self.models

    def _show(self, widget, visible: bool) -> None:
        self.form.setRowVisible(widget, visible)

    def _model_changed(self, _model: str = "") -> None:
        kind = self.models.kind()
        noise, prompted = kind == NOISE, kind != NOISE
        for widget in (self.prompt, self.negative, self.describe_button, self.from_canvas):
            self._show(widget, prompted)
        for widget in (self.steps, self.guidance, self.sampler, self.image_size):
            self._show(widget, prompted)
        self._show(self.captions, prompted and self.captions.count() > 0)
        for widget in (self.mode, self.truncation, self.upscale, self.size):
            self._show(widget, noise)
        self.inpaint_button.setVisible(prompted)
        sizes = SD_SIZES if kind == SD else TEXT_SIZES
        keep = self.image_size.currentData()
        self.image_size.clear()
        for side, label in sizes:
            self.image_size.addItem(label, side)
        self.image_size.setCurrentIndex(max(0, self.image_size.findData(keep)))
        self._mode_changed()
        self._from_canvas_changed()

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        noise = self.models.kind() == NOISE
        self._show(self.seed_b, noise and mode == "interpolate")
        self._show(self.variation, noise and mode == "variations")
        if noise and mode == "variations":
            self.models.select("studio-emoji-vae")

    def _from_canvas_changed(self) -> None:
        img2img = self.from_canvas.isChecked() and self.models.kind() != NOISE
        self._show(self._strength_row, img2img)
        self.count.setEnabled(not img2img)  # img2img makes one image
        self.image_size.setEnabled(not img2img)  # it keeps the region's size

    def _strength_changed(self) -> None:
        self.strength_label.setText(f"{self.strength.value() / 100:.2f}")

    def _upscale_changed(self) -> None:
        self.size.setEnabled(self.upscale.currentData() is not None)

    def _describing(self, busy: bool) -> None:
        self.describe_button.setEnabled(not busy)
        self.describe_button.setText("Describing…" if busy else "Describe the picture")

    def show_captions(self, captions: list[tuple[str, float]]) -> None:
        """Describe's answer: the captions listed, best first (a click uses one)."""
        self.captions.show_captions(captions)
        self._show(self.captions, bool(captions))

    # -- running ---------------------------------------------------------------------------------
    def params(self, mode: str | None = None) -> GenerateParams:
        """The job the fields describe; ``mode`` "repaint" for the prompted inpaint."""
        model, kind = self.models.current(), self.models.kind()
        common = {"model": model, "seed": self.seed.value()}
        if kind == NOISE:
            return GenerateParams(
                **common,
                count=self.count.value(),
                truncation=self.truncation.value(),
                mode=self.mode.currentData(),
                seed_b=self.seed_b.value(),
                strength=self.variation.value(),
                upscale_model=self.upscale.currentData(),
                out_size=self.size.currentData(),
            )
        if mode is None:
            mode = "variations" if self.from_canvas.isChecked() else "samples"
        one = mode != "samples"
        return GenerateParams(
            **common,
            count=1 if one else self.count.value(),
            mode=mode,
            strength=1.0 if mode == "repaint" else self.strength.value() / 100,
            prompt=self.prompt.text(),
            negative_prompt=self.negative.text(),
            steps=self.steps.value(),
            guidance=self.guidance.value(),
            sampler=self.sampler.currentData(),
            loras=self.models.loras(),
            size=0 if one else self.image_size.currentData(),
        )

    def _run(self) -> None:
        params = self.params()
        self.clear_results()  # the cells of the previous run
        region = self.models.kind() != NOISE and params.mode == "variations"
        self._grid_run = not region
        if region:  # img2img: the result lands in the picture (its selection's box)
            self.run_requested.emit(PanelRun(params, region=True))
            return
        variations = params.mode == "variations"  # of the picture: its colours only
        self.run_requested.emit(PanelRun(params, image=variations, rgb_only=True, new_canvas=True))

    def _inpaint(self) -> None:
        self.clear_results()
        self._grid_run = False
        self.run_requested.emit(PanelRun(self.params("repaint"), mask=NO_MASK))

    # -- results -------------------------------------------------------------------------------
    def clear_results(self) -> None:
        self.results.clear()

    def add_result(self, msg: TileReady) -> None:
        """A finished cell from the engine (in stream order: cell i is row i); previews and the
        tiles of an edit of the picture are not cells."""
        if not msg.final or not self._grid_run:
            return
        pixels = np.ascontiguousarray(msg.pixels[:, :, :3])
        item = QListWidgetItem(QIcon(QPixmap.fromImage(numpy_to_qimage(pixels))), "")
        item.setData(Qt.ItemDataRole.UserRole, (msg.rect.x, msg.rect.y, msg.rect.w, msg.rect.h))
        self.results.addItem(item)
        if self.results.count() == 1:
            self.results.setCurrentRow(0)

    def picked(self) -> int:
        return max(0, self.results.currentRow())
