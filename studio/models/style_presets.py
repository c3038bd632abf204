"""Paintings as presets for the arbitrary-style model (``resources/paintings/presets.json``).

Each preset is a public-domain painting shipped in Debian's ``gcompris-qt-data``, reassembled by
:mod:`studio.training.paintings`, with its 100-d style vector precomputed by
:meth:`studio.models.style.ArbitraryStyleModel.predict` (so applying a preset needs only
``transfer``), a 128x128 centre crop of the painting (``<id>.png``) and the style applied to the
sample cat of the built-in style thumbnails (``<id>-preview.png``). Regenerate all three with
``python -m studio.training.paintings --presets resources/paintings``.

Qt-free and torch-free: ``torch.tensor(preset.style_vector)`` gives the model's ``[100]`` input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from studio.paths import resources_dir

#: length of a style vector (``studio.models.style.STYLE_DIM``; not imported to stay torch-free)
STYLE_DIM = 100
PRESETS_FOLDER = "paintings"


@dataclass(frozen=True)
class PaintingPreset:
    """One painting preset; ``year`` is a display string such as ``"1888"`` or ``None``."""

    id: str
    title: str
    artist: str
    year: str | None
    licence: str
    source: str
    style_vector: tuple[float, ...]

    @property
    def credit(self) -> str:
        """``"Title, Artist (year)"``, or ``"Title, Artist"`` when the year is unknown."""
        base = f"{self.title}, {self.artist}"
        return f"{base} ({self.year})" if self.year else base

    @property
    def thumbnail(self) -> Path:
        """128x128 centre crop of the painting."""
        return resources_dir() / PRESETS_FOLDER / f"{self.id}.png"

    @property
    def preview(self) -> Path:
        """128x128 preview of the style on the built-in thumbnails' sample photo."""
        return resources_dir() / PRESETS_FOLDER / f"{self.id}-preview.png"


@cache
def _load(path: Path) -> tuple[PaintingPreset, ...]:
    presets = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        vec = tuple(float(v) for v in row["style_vector"])
        if len(vec) != STYLE_DIM:
            raise ValueError(f"{path}: preset {row['id']!r} has a {len(vec)}-d style vector")
        presets.append(
            PaintingPreset(
                id=row["id"],
                title=row["title"],
                artist=row["artist"],
                year=row.get("year"),
                licence=row["licence"],
                source=row["source"],
                style_vector=vec,
            )
        )
    return tuple(presets)


def painting_presets() -> tuple[PaintingPreset, ...]:
    """All presets, in file order (read once per resources folder)."""
    return _load(resources_dir() / PRESETS_FOLDER / "presets.json")


def preset_by_id(preset_id: str) -> PaintingPreset:
    """The preset named ``preset_id``; ``KeyError`` naming the valid ids otherwise."""
    presets = painting_presets()
    for p in presets:
        if p.id == preset_id:
            return p
    known = ", ".join(p.id for p in presets)
    raise KeyError(f"unknown painting preset {preset_id!r} (known: {known})")
