"""Remembered choices: brushes, mask look, where results land. Typed, Qt-free, JSON on disk.

The file is ``settings.json`` in :func:`studio.paths.user_data_dir` (``$STUDIO_HOME`` in tests).
Every value is checked by its field's type and limits (:mod:`studio.settings_validation`): a
value of the wrong type, not finite or out of range falls back to that field's default, and a
file that cannot be read at all (not UTF-8, not JSON, nested too deeply, too large) means all
defaults. :attr:`Settings.load_note` then says once what was reset; unknown keys are ignored.
Nothing here ever stops the app from starting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.atomic_write import write_bytes_atomic, write_text_atomic
from studio.document.brush import BrushSettings
from studio.paths import user_data_dir
from studio.settings_validation import Limits, limits, validated

RESULT_MODES = ("new_layer", "merge")
SELECT_MODES = ("replace", "add", "subtract", "intersect")
#: a settings file larger than this is not read (it cannot be one Studio wrote)
MAX_FILE_BYTES = 1 << 20

BYTE = Limits(lo=0, hi=255)
#: what a remembered brush may hold; the sizes are the tool box's SIZE_MIN..SIZE_MAX
BRUSH_LIMITS = {
    "size": Limits(lo=1.0, hi=1000.0),
    "hardness": Limits(lo=0.0, hi=1.0),
    "opacity": Limits(lo=0.01, hi=1.0),
    "spacing": Limits(lo=0.02, hi=2.0),  # the tool panel's 2-200 %
    "color": Limits(items=BYTE),
    "erase": Limits(choices=(False,)),  # the tool decides erasing, never the remembered brush
}


def _default_paint() -> BrushSettings:
    return BrushSettings(size=24.0, hardness=0.8, opacity=1.0, spacing=0.1, color=(20, 20, 20))


def _default_mask() -> BrushSettings:
    return BrushSettings(size=40.0, hardness=0.7, opacity=1.0, spacing=0.1, color=(255, 255, 255))


#: see :func:`_migrated`
SETTINGS_VERSION = 2


@dataclass
class Settings:
    """Everything Studio remembers between sessions."""

    #: Limits come from field metadata; a field without any gets the safe default rule of
    #: :mod:`studio.settings_validation` (finite, fits a Qt int, short UTF-8 text).
    paint_brush: BrushSettings = field(
        default_factory=_default_paint, metadata=limits(fields=BRUSH_LIMITS)
    )
    mask_brush: BrushSettings = field(
        default_factory=_default_mask, metadata=limits(fields=BRUSH_LIMITS)
    )
    mask_color: tuple[int, int, int] = field(default=(255, 40, 40), metadata=limits(items=BYTE))
    mask_opacity: float = field(default=0.5, metadata=limits(lo=0.05, hi=1.0))
    #: where an accepted engine result goes: "new_layer" or "merge" (into the active layer)
    result_mode: str = field(default="new_layer", metadata=limits(choices=RESULT_MODES))
    #: default of the selection tools without modifiers: replace, add, subtract or intersect
    select_mode: str = field(default="replace", metadata=limits(choices=SELECT_MODES))
    grow_px: int = field(default=8, metadata=limits(lo=1, hi=500))  # the mask panel's range
    feather_px: int = field(default=8, metadata=limits(lo=1, hi=500))
    last_folder: str = ""
    #: the Inpaint panel's method (fill and outpaint): a model id or a weight-file path;
    #: "auto" chooses by the mask
    inpaint_method: str = "auto"
    #: seconds between autosaves of a changed document to the recovery folder
    autosave_seconds: float = field(default=120.0, metadata=limits(lo=0.2, hi=3600.0))
    #: projects and images opened or saved lately, newest first (File > Open Recent)
    recent_files: tuple[str, ...] = field(default=(), metadata=limits(max_len=10))
    #: label exports with the model, parameters and seed that made them (PNG text, XMP, IPTC)
    export_metadata: bool = True
    #: the export options dialog's last choices, each format its own
    export_jpeg_quality: int = field(default=92, metadata=limits(lo=1, hi=100))
    export_webp_quality: int = field(default=90, metadata=limits(lo=1, hi=100))
    export_webp_lossless: bool = False
    export_png_16bit: bool = False
    export_tiff_16bit: bool = False
    #: another tool's models folder whose Stable Diffusion checkpoints and LoRAs Studio lists
    #: (AUTOMATIC1111/Forge or ComfyUI: its root, its models folder or one model subfolder);
    #: "" for none (:mod:`studio.models.sd.discovery`)
    sd_models_folder: str = ""
    #: the layout of this file; files without it are version 1 (see :func:`_migrated`)
    settings_version: int = SETTINGS_VERSION

    #: one status-bar line when :meth:`load` had to reset values; a plain class attribute,
    #: not a field, so it is never saved or compared
    load_note = None

    # -- persistence -----------------------------------------------------------------------
    @staticmethod
    def path() -> Path:
        return user_data_dir() / "settings.json"

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """Read the settings file; defaults for anything missing, unreadable or invalid.

        Never raises. When something had to be reset, :attr:`load_note` says what, and the
        file as it was is copied beside it as ``settings.json.bad``, since the next save
        replaces it.
        """
        path = path or cls.path()
        try:
            data = _read_json(path)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, RecursionError, MemoryError) as exc:
            return cls._with_note(path, f"{path.name} could not be read ({_why(exc)})")
        if not isinstance(data, dict):
            return cls._with_note(path, f"{path.name} holds no settings")
        data = _migrated(data)
        try:
            out, reset = validated(cls, data)
        except (RecursionError, MemoryError):  # pragma: no cover - only on a nearly full stack
            return cls._with_note(path, f"{path.name} could not be checked")
        if reset:
            names = ", ".join(reset[:6]) + (f" and {len(reset) - 6} more" if len(reset) > 6 else "")
            kept = _keep_copy(path)
            out.load_note = (
                f"Settings: reset {names} to defaults (invalid values in {path.name}{kept})"
            )
        return out

    @classmethod
    def _with_note(cls, path: Path, problem: str) -> Settings:
        out = cls()
        out.load_note = f"Settings: {problem}; using defaults{_keep_copy(path)}"
        return out

    def save(self, path: Path | None = None) -> bool:
        """Write atomically; False (and no exception) when the folder is not writable.

        A value that would not load back (NaN, out of range, a wrong type set by code) is
        written as its default, so the file never holds NaN or Infinity.
        """
        path = path or self.path()
        clean, _invalid = validated(type(self), self.to_dict())
        try:
            text = json.dumps(clean.to_dict(), indent=2, allow_nan=False)
        except ValueError:  # pragma: no cover - the check above lets no NaN through
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text)
        except OSError:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Settings from a decoded JSON object; each invalid value keeps its default."""
        return validated(cls, data)[0]


def _migrated(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the current layout reads it.

    Version 1 saved every field, so its ``inpaint_method`` of ``"studio-inpaint"`` (that
    version's default) cannot be told from a choice; it is read as the new default (``"auto"``,
    chosen by the mask). Any other method a version-1 file holds was the artist's choice and is
    kept.
    """
    version = data.get("settings_version", 1)
    old = not isinstance(version, int) or version < 2
    if old and data.get("inpaint_method") == "studio-inpaint":
        data = {k: v for k, v in data.items() if k != "inpaint_method"}
    return data | {"settings_version": SETTINGS_VERSION}


class _Unreadable(ValueError):
    """A settings file Studio does not even try to parse."""


def _read_json(path: Path) -> Any:
    with path.open("rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise _Unreadable("larger than 1 MiB")
    if not raw.strip():
        raise _Unreadable("empty file")
    return json.loads(raw.decode("utf-8-sig"))  # a BOM from a Windows editor is fine


def _why(exc: BaseException) -> str:
    """A few words on why a settings file could not be read."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, MemoryError):
        return "too large"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg}, line {exc.lineno}"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, _Unreadable):
        return str(exc)
    return "not valid JSON"  # e.g. an integer of more than 4300 digits


def _keep_copy(path: Path) -> str:
    """Copy the file that was (partly) rejected beside it; the words to tell the artist."""
    backup = path.with_name(path.name + ".bad")
    try:
        if path.stat().st_size == 0:
            return ""
        write_bytes_atomic(backup, path.read_bytes())  # never through a planted symlink
    except OSError:
        return ""
    return f"; the old file is kept as {backup.name}"
