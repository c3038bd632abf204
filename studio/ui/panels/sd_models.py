"""The Generate panel's model list: Studio's own models (text-to-image, emoji GAN and VAE) and
the artist's Stable Diffusion checkpoints, with their LoRAs when one is chosen.

Checkpoints and LoRAs come from :func:`studio.models.sd.discovery.list_sd_models` (headers only:
name, family, size on disk, licence text) over the user models folder and one setting that
points at another tool's models folder (A1111 ``models/Stable-diffusion``, ComfyUI
``models/checkpoints``), chosen here with "Models folder…". Any other file or diffusers folder
can be opened directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.tasks.denoisers import SD, backend_kind
from studio.errors import StudioError
from studio.models.registry import all_models
from studio.task_kind import TaskKind

#: the setting (a field of :class:`~studio.settings.Settings`) naming another tool's models folder
FOLDER_SETTING = "sd_models_folder"
NOISE, TEXT = "noise", "text"  # with SD: what kind of model is chosen
FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "sdxl-refiner": "SDXL refiner"}
FILE_FILTER = "Stable Diffusion or GAN/VAE weights (*.safetensors *.ckpt *.pt *.pth);;All files (*)"


def model_kind(model: str) -> str:
    """NOISE (GAN/VAE), SD (flexible-size Stable Diffusion) or TEXT (another denoising model);
    NOISE for a path that no longer exists (the job then says why)."""
    try:
        kind = backend_kind(model)
    except StudioError:
        return NOISE
    return NOISE if kind is None else SD if kind == SD else TEXT


def size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{max(n, 1) / 2**20:.0f} MB"


def entry_label(entry) -> str:
    """ "name — SDXL Turbo inpainting · 6.5 GB" for a discovery entry."""
    family = FAMILY_NAMES.get(str(entry.family), "unknown family") if entry.family else ""
    extra = [] if str(entry.few_step) in ("", "none") else [str(entry.few_step).capitalize()]
    extra += ["inpainting"] if entry.inpainting else []
    what = " ".join([family, *extra]).strip() or "SD"
    return f"{entry.name} — {what} · {size_text(entry.size_bytes)}"


def entry_tooltip(entry) -> str:
    licence = entry.licence or "The file carries no licence text: check where it came from."
    return f"{entry.path}\n\nLicence: {_short(licence, 2000)}"


def _short(text: str, limit: int) -> str:
    if not text:
        return "not stated in the file"
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class LoraRow(QWidget):
    """One LoRA file: a checkbox with its name and a weight."""

    def __init__(self, entry, parent=None) -> None:
        super().__init__(parent)
        self.entry = entry
        self.check = QCheckBox(entry.name)
        self.check.setToolTip(entry_tooltip(entry))
        self.weight = QDoubleSpinBox()
        self.weight.setRange(-4.0, 4.0)
        self.weight.setSingleStep(0.1)
        self.weight.setValue(1.0)
        self.weight.setToolTip("How strongly the LoRA applies (1 = as trained)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.check, 1)
        row.addWidget(self.weight)


class GenerateModelList(QWidget):
    """The model combo (grouped), "Open…", "Models folder…" and the LoRA rows; emits
    ``changed(model)`` when the choice changes."""

    changed = Signal(str)

    def __init__(self, settings=None, save: Callable[[], None] | None = None, parent=None):
        super().__init__(parent)
        self._settings = settings
        self._save = save or (lambda: None)
        self._entries: list = []
        self._folder = ""
        self._kind = NOISE
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.open_button = QToolButton()
        self.open_button.setText("Open…")
        self.open_button.setToolTip("Use a model file or a diffusers folder you have")
        self.open_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.open_button)
        menu.addAction("Model file…", self._choose_file)
        menu.addAction("Diffusers folder…", self._choose_folder)
        menu.addSeparator()
        menu.addAction("Models folder of another tool…", self.choose_models_folder)
        self.open_button.setMenu(menu)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(mid);")
        self.loras_label = QLabel("LoRAs")
        self.lora_box = QWidget()
        self.lora_layout = QVBoxLayout(self.lora_box)
        self.lora_layout.setContentsMargins(0, 0, 0, 0)
        self.lora_rows: list[LoraRow] = []
        top = QHBoxLayout()
        top.addWidget(self.combo, 1)
        top.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.description)
        layout.addWidget(self.loras_label)
        layout.addWidget(self.lora_box)
        self.combo.currentIndexChanged.connect(self._on_change)
        self.refresh()

    # -- the list ----------------------------------------------------------------------------
    def models_folder(self) -> str:
        return self._folder or str(getattr(self._settings, FOLDER_SETTING, "") or "")

    def refresh(self) -> None:
        """Rebuild the list (Studio's models, then the artist's); keeps the choice if listed."""
        from studio.models.sd.discovery import CHECKPOINT, list_sd_models
        from studio.paths import user_models_dir

        keep = self.combo.currentData()
        other = Path(self.models_folder()).expanduser() if self.models_folder() else None
        try:
            self._entries = list_sd_models(user_models_dir(), other)
        except OSError:
            self._entries = []
        self.combo.blockSignals(True)
        self.combo.clear()
        specs = all_models(TaskKind.GENERATE)
        self._header("Studio's models")
        for spec in sorted(specs, key=lambda s: model_kind(s.id) == NOISE):  # text models first
            self._add(spec.name, spec.id, spec.description)
        checkpoints = [e for e in self._entries if e.kind == CHECKPOINT]
        self._header(
            "Your Stable Diffusion models" if checkpoints else "No Stable Diffusion models"
        )
        for entry in checkpoints:
            self._add(entry_label(entry), str(entry.path), entry_tooltip(entry))
        self.combo.blockSignals(False)
        index = self.combo.findData(keep) if keep else -1
        self.combo.setCurrentIndex(index if index >= 0 else self._first_model())
        self._on_change()

    def _header(self, text: str) -> None:
        self.combo.addItem(text, None)
        model = self.combo.model()
        if isinstance(model, QStandardItemModel):
            model.item(self.combo.count() - 1).setEnabled(False)

    def _add(self, label: str, value: str, tooltip: str) -> None:
        self.combo.addItem(label, value)
        self.combo.setItemData(self.combo.count() - 1, tooltip, Qt.ItemDataRole.ToolTipRole)

    def _first_model(self) -> int:
        return next((i for i in range(self.combo.count()) if self.combo.itemData(i)), -1)

    # -- the choice --------------------------------------------------------------------------
    def current(self) -> str:
        """A registry id, or the path of a weight file or diffusers folder."""
        return self.combo.currentData() or ""

    def kind(self) -> str:
        """NOISE, TEXT or SD for the chosen model (decided once per choice: it reads headers)."""
        return self._kind

    def select(self, model: str) -> bool:
        index = self.combo.findData(model)
        if index >= 0:
            self.combo.setCurrentIndex(index)
        return index >= 0

    def add_path(self, path: str) -> None:
        """Choose a file or folder the list does not show (added under the artist's models)."""
        if not self.select(path):
            self._add(f"Opened: {Path(path).name}", path, path)
            self.combo.setCurrentIndex(self.combo.count() - 1)

    def loras(self) -> tuple[tuple[str, float], ...]:
        """The ticked LoRAs as (file, weight); none unless a Stable Diffusion model is chosen."""
        if self.kind() != SD:
            return ()
        return tuple(
            (str(r.entry.path), r.weight.value()) for r in self.lora_rows if r.check.isChecked()
        )

    def _on_change(self) -> None:
        model = self.current()
        self._kind = model_kind(model)
        entry = next((e for e in self._entries if str(e.path) == model), None)
        spec = next((s for s in all_models(TaskKind.GENERATE) if s.id == model), None)
        if spec is not None:
            text = spec.description
        elif entry is not None:
            text = f"In {entry.path.parent}. Licence: {_short(entry.licence, 80)}."
        else:
            text = f"Your model: {Path(model).name}." if model else ""
        self.description.setText(text)
        self._show_loras(entry.family if entry is not None else None)
        self.changed.emit(model)

    def _show_loras(self, family) -> None:
        from studio.models.sd.discovery import LORA

        for row in self.lora_rows:
            row.setParent(None)
            row.deleteLater()
        self.lora_rows = []
        if self.kind() == SD:
            for entry in self._entries:
                fits = entry.family is None or family is None or entry.family == family
                if entry.kind == LORA and fits:
                    row = LoraRow(entry)
                    self.lora_layout.addWidget(row)
                    self.lora_rows.append(row)
        self.loras_label.setVisible(bool(self.lora_rows))
        self.lora_box.setVisible(bool(self.lora_rows))

    # -- dialogs -----------------------------------------------------------------------------
    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model file", "", FILE_FILTER)
        if path:
            self.add_path(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a diffusers model folder")
        if path:
            self.add_path(path)

    def choose_models_folder(self) -> None:
        start = self.models_folder()
        path = QFileDialog.getExistingDirectory(self, "Models folder of another tool", start)
        if path:
            self.set_models_folder(path)

    def set_models_folder(self, path: str) -> None:
        """Remember ``path`` (the setting) and list the models found there."""
        if self._settings is not None and hasattr(self._settings, FOLDER_SETTING):
            setattr(self._settings, FOLDER_SETTING, path)
            self._save()
        self._folder = path  # also without the setting (kept for this session then)
        self.refresh()
