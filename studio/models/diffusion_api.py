"""The one contract between the engine and any denoising model (Studio's own text-to-image
model, an artist's Stable Diffusion file): a :class:`DenoiseRequest` in, a generator of
:class:`DenoiseStep` out, the finished images as its return value.

Why a generator: the engine checks Cancel between steps and streams each step's preview, so a
backend never sees the engine, a job id or Qt. Images cross this boundary as RGB uint8 HxWx3
numpy (the Studio convention outside models); masks as float32 HxW with 1 = repaint.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class DenoiseRequest:
    """One run. ``width``/``height``: the size the model works at (its native size when 0).

    ``count`` images come from seeds ``seed, seed+1, ...`` (image ``i`` is the same whatever
    ``count`` is). With ``init`` (uint8 HxWx3) the run is img2img: ``strength`` 0 returns the
    input, 1 ignores it. With ``mask`` as well, only where the mask is 1 is repainted.
    ``guidance`` <= 1 switches classifier-free guidance off (one model call per step).
    """

    prompt: str = ""
    negative: str = ""
    seed: int = 0
    steps: int = 20
    guidance: float = 5.0
    sampler: str = "dpm++"
    count: int = 1
    width: int = 0
    height: int = 0
    init: np.ndarray | None = None
    strength: float = 0.75
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class DenoiseStep:
    """Step ``index`` (1-based) of ``total`` finished; ``preview``: uint8 [count, h, w, 3], a
    cheap approximation of the images so far (may be smaller than the final size)."""

    index: int
    total: int
    preview: np.ndarray


class DenoiseBackend(Protocol):
    """A loaded denoising model. ``denoise`` yields one :class:`DenoiseStep` per step and
    returns the final images, uint8 [count, height, width, 3]."""

    native_size: tuple[int, int]  # (width, height)

    def denoise(self, request: DenoiseRequest) -> Generator[DenoiseStep, None, np.ndarray]: ...
