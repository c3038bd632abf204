"""A fake denoising backend for the generate task's tests: deterministic, fast, no network.

Image ``i`` comes from seed ``seed + i`` alone (as the contract asks); every step yields a
preview; img2img mixes the init with the seed's noise by ``strength``; a mask repaints only
where it is 1. It counts the steps it has run, so tests can see that Cancel stopped it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from studio.engine.tasks import denoisers
from studio.models.diffusion_api import DenoiseRequest, DenoiseStep

FAKE_MODEL = "fake-denoiser"
FAKE_SD = "fake-sd"


class FakeDenoiser:
    """``native_size`` (w, h); ``requests`` holds every request it was given."""

    def __init__(self, native: int = 16) -> None:
        self.native_size = (native, native)
        self.steps_run = 0
        self.requests: list[DenoiseRequest] = []
        self.layer = torch.nn.Linear(4, 4)  # something for the model cache to count

    def _noise(self, seed: int, h: int, w: int) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.float32)

    def denoise(self, request: DenoiseRequest) -> Generator[DenoiseStep, None, np.ndarray]:
        self.requests.append(request)
        w, h = (request.width, request.height) if request.width else self.native_size
        images = np.stack([self._noise(request.seed + i, h, w) for i in range(request.count)])
        images += len(request.prompt)  # the prompt changes the picture
        if request.init is not None:
            assert request.init.shape == (h, w, 3) and request.init.dtype == np.uint8
            images = request.strength * images + (1 - request.strength) * request.init
            if request.mask is not None:
                keep = (request.mask < 0.5)[None, :, :, None]
                images = np.where(keep, request.init[None].astype(np.float32), images)
        for index in range(1, request.steps + 1):
            self.steps_run += 1
            preview = (images[:, ::2, ::2] * index / request.steps).astype(np.uint8)
            yield DenoiseStep(index, request.steps, preview)
        return np.clip(images, 0, 255).astype(np.uint8)


@contextmanager
def registered(native: int = 16, name: str = FAKE_MODEL, flexible: bool = False) -> Iterator:
    """A fresh :class:`FakeDenoiser` registered as model ``name`` while the block runs."""
    fake = FakeDenoiser(native)
    denoisers.register_backend(name, lambda device, dtype: fake, flexible)
    try:
        yield fake
    finally:
        denoisers.unregister_backend(name)
