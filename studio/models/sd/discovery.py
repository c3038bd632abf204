"""Stable Diffusion checkpoints and LoRAs the artist already has: Studio's user models folder
and, through one setting, another tool's models folder (AUTOMATIC1111/Forge
``models/Stable-diffusion`` + ``models/Lora``, ComfyUI ``models/checkpoints`` + ``models/loras``).

Listing reads headers only: a ``.safetensors`` header (a few hundred KB), a diffusers folder's
JSON configs, the pickle index of a zip ``.ckpt`` (memory-mapped, weights only). No weight is
read, so a folder of fifty checkpoints lists in well under a second.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.models.sd.family import (
    detect_family,
    family_of_unet_config,
    few_step_of,
    is_lora,
    licence_of,
)
from studio.models.sd.header import read_safetensors_header
from studio.models.sd.loading import OldFormatError, folder_licence, pickle_shapes
from studio.models.sd.lora import lora_family
from studio.models.sd.model import FewStep, SDFamily

CHECKPOINT, LORA = "checkpoint", "lora"
#: (subfolder of a tool's root, kind); A1111 and Forge first, then ComfyUI
TOOL_SUBFOLDERS = (
    ("models/Stable-diffusion", CHECKPOINT),
    ("models/Lora", LORA),
    ("models/checkpoints", CHECKPOINT),
    ("models/loras", LORA),
    ("models/diffusers", CHECKPOINT),
)
_LORA_FOLDER_NAMES = {"lora", "loras"}
_WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")
#: how deep to look below a models folder (artists sort files into subfolders)
MAX_DEPTH = 3


@dataclass(frozen=True)
class ModelEntry:
    """One listed model. ``family`` is None when the header does not say (an old ``.ckpt``,
    a LoRA adapting only a text encoder)."""

    path: Path
    name: str
    kind: str
    family: SDFamily | None
    size_bytes: int
    licence: str = ""
    inpainting: bool = False
    few_step: FewStep = FewStep.NONE


def tool_folders(root: Path) -> list[tuple[Path, str | None]]:
    """(folder, kind) pairs to scan for a tool's folder: its root, its ``models`` folder or one
    of the model subfolders itself. Kind None: classify each file by its header."""
    bases = [root]
    if root.name == "models":
        bases.append(root.parent)
    if root.parent.name == "models":  # one subfolder given: its siblings count too
        bases.append(root.parent.parent)
    for base in bases:
        found = [(base / sub, kind) for sub, kind in TOOL_SUBFOLDERS if (base / sub).is_dir()]
        if found:
            return found
    if root.is_dir():
        return [(root, LORA if root.name.lower() in _LORA_FOLDER_NAMES else None)]
    return []


def list_sd_models(user_models: Path | None, other_tool: Path | None = None) -> list[ModelEntry]:
    """Checkpoints first, then LoRAs, each sorted by name; files that are neither are left out."""
    folders: list[tuple[Path, str | None]] = []
    if user_models is not None and user_models.is_dir():
        folders.append((user_models, None))
    if other_tool is not None:
        folders += tool_folders(other_tool)
    seen: set[Path] = set()
    entries = []
    for folder, kind in folders:
        for path in _candidates(folder):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            entry = describe(path, kind)
            if entry is not None:
                entries.append(entry)
    return sorted(entries, key=lambda e: (e.kind != CHECKPOINT, e.name.lower(), str(e.path)))


def describe(path: Path, kind: str | None = None) -> ModelEntry | None:
    """The entry for one file or diffusers folder; None when it is no SD checkpoint or LoRA."""
    try:
        if path.is_dir():
            return _describe_folder(path)
        if path.suffix.lower() == ".safetensors":
            return _describe_safetensors(path, kind)
        if kind == LORA:
            return ModelEntry(path, path.stem, LORA, None, _size(path))
        return _describe_pickle(path)
    except (StudioError, OSError, ValueError):
        return None


def _describe_safetensors(path: Path, kind: str | None) -> ModelEntry | None:
    header = read_safetensors_header(path)
    licence = licence_of(header.metadata)
    if is_lora(header.shapes):
        family = lora_family(header.shapes)
        return ModelEntry(path, path.stem, LORA, family, _size(path), licence)
    if kind == LORA:
        return None
    family, inpainting = detect_family(header.shapes)
    few_step = few_step_of(path.stem, header.metadata)
    return ModelEntry(
        path, path.stem, CHECKPOINT, family, _size(path), licence, inpainting, few_step
    )


def _describe_pickle(path: Path) -> ModelEntry | None:
    try:
        shapes = pickle_shapes(path, read_legacy=False)
    except OldFormatError:  # listed as what its name says; loading reads it and tells
        if path.suffix.lower() != ".ckpt":
            return None
        return ModelEntry(path, path.stem, CHECKPOINT, None, _size(path))
    family, inpainting = detect_family(shapes)
    few_step = few_step_of(path.stem, {})
    return ModelEntry(path, path.stem, CHECKPOINT, family, _size(path), "", inpainting, few_step)


def _describe_folder(folder: Path) -> ModelEntry | None:
    config = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    family, inpainting = family_of_unet_config(config)
    size = sum(_size(p) for p in folder.rglob("*") if p.is_file())
    few_step = few_step_of(folder.name, {})
    return ModelEntry(
        folder, folder.name, CHECKPOINT, family, size, folder_licence(folder), inpainting, few_step
    )


def _candidates(folder: Path) -> list[Path]:
    """Weight files and diffusers folders below ``folder`` (hidden entries skipped)."""
    out = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        here = Path(current)
        depth = len(here.relative_to(folder).parts)
        if (here / "model_index.json").is_file() and (here / "unet").is_dir():
            out.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        out += [here / f for f in sorted(files) if f.lower().endswith(_WEIGHT_SUFFIXES)]
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
