"""The one explicit list of architectures Studio builds itself, tried in order by ``detect``.

Every weight file Studio reads (upscalers, inpainters, style networks, generators, an artist's
own files) is recognised here first; spandrel only sees what none of these accepts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import torch

from studio.models.arch import Architecture

# (module, class) pairs; imported lazily so a broken optional arch cannot break startup.
_ARCHITECTURES: tuple[tuple[str, str], ...] = (
    ("studio.models.archs.srvgg", "SRVGGArch"),
    ("studio.models.archs.rrdbnet", "RRDBNetArch"),
    ("studio.models.archs.upconv7", "UpConv7Arch"),
    ("studio.models.archs.inpaint_unet", "InpaintUNetArch"),
    ("studio.models.archs.style_cin", "StyleCINArch"),
    ("studio.models.archs.style_predictor", "StylePredictorArch"),
    ("studio.models.archs.vae", "VAEArch"),
    ("studio.models.archs.gan", "GANArch"),
    ("studio.models.archs.mini_clip", "MiniClipArch"),
)


def architectures() -> list[Architecture]:
    """Instances of every registered architecture that is present in this installation."""
    found = []
    for module_name, class_name in _ARCHITECTURES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        found.append(getattr(module, class_name)())
    return found


def architecture_by_id(arch_id: str) -> Architecture:
    for arch in architectures():
        if arch.id == arch_id:
            return arch
    raise KeyError(f"unknown architecture {arch_id!r}")


def detect_architecture(state_dict: Mapping[str, torch.Tensor]) -> Architecture | None:
    """The first registered architecture whose ``detect`` accepts the state dict."""
    for arch in architectures():
        if arch.detect(state_dict):
            return arch
    return None
