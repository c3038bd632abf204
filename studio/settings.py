"""Remembered choices: brushes, mask look, where results land. Typed, Qt-free, JSON on disk.

The file is ``settings.json`` in :func:`studio.paths.user_data_dir` (``$STUDIO_HOME`` in tests).
A missing or corrupt file, an unknown key or a value of the wrong type falls back to the
default for that field; nothing here ever stops the app from starting.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from studio.document.brush import BrushSettings
from studio.paths import user_data_dir

RESULT_MODES = ("new_layer", "merge")
SELECT_MODES = ("replace", "add", "subtract", "intersect")


def _default_paint() -> BrushSettings:
    return BrushSettings(size=24.0, hardness=0.8, opacity=1.0, spacing=0.1, color=(20, 20, 20))


def _default_mask() -> BrushSettings:
    return BrushSettings(size=40.0, hardness=0.7, opacity=1.0, spacing=0.1, color=(255, 255, 255))


@dataclass
class Settings:
    """Everything Studio remembers between sessions."""

    paint_brush: BrushSettings = field(default_factory=_default_paint)
    mask_brush: BrushSettings = field(default_factory=_default_mask)
    mask_color: tuple[int, int, int] = (255, 40, 40)
    mask_opacity: float = 0.5
    #: where an accepted engine result goes: "new_layer" or "merge" (into the active layer)
    result_mode: str = "new_layer"
    #: default of the selection tools without modifiers: replace, add, subtract or intersect
    select_mode: str = "replace"
    grow_px: int = 8
    feather_px: int = 8
    last_folder: str = ""

    # -- persistence -----------------------------------------------------------------------
    @staticmethod
    def path() -> Path:
        return user_data_dir() / "settings.json"

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Read the settings file; defaults for anything missing, unreadable or mistyped."""
        path = path or cls.path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls.from_dict(data) if isinstance(data, dict) else cls()

    def save(self, path: Path | None = None) -> bool:
        """Write atomically; False (and no exception) when the folder is not writable."""
        path = path or self.path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        out = cls()
        for f in fields(cls):
            if f.name not in data:
                continue
            value = _coerce(getattr(out, f.name), data[f.name])
            if value is not None:
                setattr(out, f.name, value)
        if out.result_mode not in RESULT_MODES:
            out.result_mode = "new_layer"
        if out.select_mode not in SELECT_MODES:
            out.select_mode = "replace"
        out.mask_opacity = min(max(out.mask_opacity, 0.05), 1.0)
        return out


def _coerce(default: Any, value: Any) -> Any:
    """``value`` converted to the type of ``default``, or None when it does not fit."""
    if isinstance(default, BrushSettings):
        if not isinstance(value, dict):
            return None
        kept = {}
        for f in fields(BrushSettings):
            if f.name in value:
                v = _coerce(getattr(default, f.name), value[f.name])
                if v is not None:
                    kept[f.name] = v
        return _valid_brush(replace(default, **kept), default)
    if isinstance(default, bool):
        return value if isinstance(value, bool) else None
    if isinstance(default, int):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None
    if isinstance(default, str):
        return value if isinstance(value, str) else None
    if isinstance(default, tuple):
        if (
            isinstance(value, list | tuple)
            and len(value) == len(default)
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
        ):
            return tuple(value)
        return None
    return None


def _valid_brush(brush: BrushSettings, default: BrushSettings) -> BrushSettings:
    """Clamp a loaded brush to sane ranges (a hand-edited file must not break painting)."""
    return replace(
        brush,
        size=min(max(brush.size, 1.0), 2000.0),
        hardness=min(max(brush.hardness, 0.0), 1.0),
        opacity=min(max(brush.opacity, 0.01), 1.0),
        spacing=min(max(brush.spacing, 0.02), 2.0),
        erase=default.erase,
    )
