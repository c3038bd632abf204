"""What a task may use while it runs: the cancel token, the device and the model cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from studio.engine.cache import ModelCache
from studio.engine.device import DeviceInfo, env_precision
from studio.engine.jobs import CancelToken
from studio.engine.tasks.events import LoadingModel
from studio.errors import MissingModelError
from studio.models.arch import LoadedModel
from studio.models.descriptor import ImageModel, InpaintModel
from studio.models.loading import SAFETENSORS, TORCH_PICKLES, load_weights
from studio.models.spec import ModelSpec
from studio.paths import checkpoints_dir

T = TypeVar("T")


def wants_compile() -> bool:
    """``STUDIO_COMPILE=1`` (the CLI's ``--compile``): run image models through torch.compile."""
    return os.environ.get("STUDIO_COMPILE", "").lower() in ("1", "true", "yes")


def is_weight_path(name: str) -> bool:
    """True when a model name is a weight file rather than a registry id."""
    return name.lower().endswith(SAFETENSORS + TORCH_PICKLES)


@dataclass
class TaskContext:
    cancel: CancelToken
    device_info: DeviceInfo
    cache: ModelCache

    @property
    def device(self) -> torch.device:
        return self.device_info.device

    def preferred_dtype(self, spec: ModelSpec) -> torch.dtype:
        """fp16 on CUDA where the model allows it, fp32 elsewhere.

        bf16 on the CPU is opt-in (``STUDIO_PRECISION=bf16``): on the AVX-512 BF16 CPUs here,
        oneDNN's native bf16 convolutions measured *slower* than fp32 (a 64->64 3x3 conv on
        128x128: 23-36 ms vs 13-28 ms; x4plus 96x96: 13.6 s vs 10.5 s), while bf16 moves the
        x4plus output by 0.41/255 on average. ``STUDIO_PRECISION=fp32`` forces fp32 on GPUs.
        """
        wanted = env_precision()
        if wanted == "fp32" or not spec.supports_half:
            return torch.float32
        if self.device.type == "cuda":
            return torch.float16
        if wanted == "bf16" and self.device.type == "cpu" and self.device_info.supports_bf16:
            return torch.bfloat16
        return torch.float32

    def cached(
        self, key: Hashable, name: str, build: Callable[[], T]
    ) -> Generator[LoadingModel, None, T]:
        """``build()`` through the model cache under ``key``; a miss first yields
        ``LoadingModel(name)``, and cancel is checked before and after loading."""
        if key not in self.cache:
            yield LoadingModel(name)
            self.cancel.check()
        model = self.cache.get(key, build)
        self.cancel.check()
        return model

    def load_model(
        self,
        spec: ModelSpec,
        dtype: torch.dtype | None = None,
        wrapper: type = ImageModel,
        **options: Any,
    ) -> Generator[LoadingModel, None, ImageModel]:
        """The model of ``spec`` from the cache, loading it (cancellably) on a miss; ``options``
        go to the wrapper (and into the cache key)."""
        dtype = dtype or self.preferred_dtype(spec)
        key = (spec.id, str(self.device), str(dtype), wrapper.__name__, *sorted(options.items()))
        key, compile_options = _compile_options(key, wrapper)
        options |= compile_options

        def build():
            loaded = load_weights(spec_weight_path(spec), spec.files[0].sha256)
            return wrapper(loaded, self.device, dtype, **options)

        return (yield from self.cached(key, spec.id, build))

    def load_inpaint_model(self, spec: ModelSpec) -> Generator[LoadingModel, None, InpaintModel]:
        return (
            yield from self.load_model(
                spec, torch.float32, InpaintModel, flip_average=spec.flip_average
            )
        )

    def load_user_model(
        self, path: str | Path, wrapper: type = ImageModel
    ) -> Generator[LoadingModel, None, ImageModel]:
        """A weight file chosen by the artist (read safely; architecture detected)."""
        p = Path(path).expanduser().resolve()
        if not p.is_file():
            raise MissingModelError(f"{path}: weight file not found")
        key = (str(p), p.stat().st_mtime_ns, str(self.device), wrapper.__name__)
        key, options = _compile_options(key, wrapper)

        def build():
            loaded: LoadedModel = load_weights(p)
            dtype = (
                torch.float16
                if self.device.type == "cuda" and loaded.supports_half
                else (torch.float32)
            )
            return wrapper(loaded, self.device, dtype, **options)

        return (yield from self.cached(key, p.name, build))


def _compile_options(key: tuple, wrapper: type) -> tuple[tuple, dict[str, bool]]:
    """Cache key and wrapper options: image models are compiled when :func:`wants_compile`
    (any architecture, registry or user file; a compiler failure falls back to eager)."""
    if wrapper is ImageModel and wants_compile():
        return (*key, "compiled"), {"compiled": True}
    return key, {}


def spec_weight_path(spec: ModelSpec) -> Path:
    """The checkpoint file of a registry model; a clear error when it has none or it is missing."""
    if not spec.files:
        raise MissingModelError(f"model '{spec.id}' has no weight files")
    path = Path(checkpoints_dir()) / spec.files[0].name
    if not path.is_file():
        raise MissingModelError(
            f"model '{spec.id}': weight file {spec.files[0].name} is missing from {path.parent}"
        )
    return path
