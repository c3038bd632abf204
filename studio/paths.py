"""Where Studio finds its bundled checkpoints and resources, and where it keeps user data."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_ROOT = _PACKAGE.parent


def checkpoints_dir() -> Path:
    """Bundled weights: ``$STUDIO_CHECKPOINTS`` or the ``checkpoints/`` folder of the checkout."""
    env = os.environ.get("STUDIO_CHECKPOINTS")
    return Path(env) if env else _SOURCE_ROOT / "checkpoints"


def resources_dir() -> Path:
    """Sample images, style thumbnails and other bundled assets."""
    env = os.environ.get("STUDIO_RESOURCES")
    return Path(env) if env else _SOURCE_ROOT / "resources"


def user_data_dir() -> Path:
    """Per-user data (imported models, settings): ``$STUDIO_HOME`` or the XDG data folder."""
    env = os.environ.get("STUDIO_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "studio"


def data_cache_dir() -> Path:
    """Downloaded packages, prepared data sets and training runs (never the repository):
    ``$STUDIO_CACHE`` or the XDG cache folder (``~/.cache/studio``)."""
    env = os.environ.get("STUDIO_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "studio"


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def sample_image() -> Path:
    return resources_dir() / "sample.jpg"
