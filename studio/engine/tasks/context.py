"""What a task may use while it runs: the cancel token, the device and the model cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from studio.engine.autotune import TuneResult, Variant
from studio.engine.cache import ModelCache
from studio.engine.config import EngineConfig
from studio.engine.device import DeviceInfo
from studio.engine.events import LoadingModel, Progress
from studio.engine.jobs import CancelToken
from studio.engine.tasks.tuned import build_variant, tuned_variant
from studio.errors import MissingModelError
from studio.models.arch import LoadedModel
from studio.models.descriptor import ImageModel, InpaintModel
from studio.models.loading import (
    SAFETENSORS,
    TORCH_PICKLES,
    load_registered,
    load_weights,
    registered_files,
)
from studio.models.spec import ModelSpec

T = TypeVar("T")


def is_weight_path(name: str) -> bool:
    """True when a model name is a weight file rather than a registry id."""
    return name.lower().endswith(SAFETENSORS + TORCH_PICKLES)


@dataclass
class TaskContext:
    cancel: CancelToken
    device_info: DeviceInfo
    cache: ModelCache
    config: EngineConfig = field(default_factory=EngineConfig)
    #: what the last :meth:`tuned` call chose (for the job's info and the panel); for a Stable
    #: Diffusion model an :class:`~studio.engine.tasks.sd_tuning.SDTuning` (also ``summary()``)
    last_tuning: TuneResult | Any | None = None
    #: seconds this job spent loading or converting models (reported in the job's timings)
    load_seconds: float = 0.0

    @property
    def device(self) -> torch.device:
        return self.device_info.device

    def preferred_dtype(self, spec: ModelSpec | LoadedModel) -> torch.dtype:
        """The precision to load ``spec`` in before any measuring.

        A fixed ``config.precision`` is used where the model and device allow it. Under "auto":
        fp16 on CUDA where the model allows it, else fp32; image models on the CPU are then
        measured by :meth:`tuned` (bf16 ran 0.5x fp32 on one CPU of ours and 2.5-5x on others).
        """
        wanted = self.config.precision
        if wanted == "fp32" or not spec.supports_half:
            return torch.float32
        if wanted == "bf16" and (self.device_info.supports_bf16 or self.device.type == "cuda"):
            return torch.bfloat16
        if wanted in ("fp16", "auto") and self.device.type == "cuda":
            return torch.float16
        return torch.float32

    def tuned(
        self, model: ImageModel, model_key: str, sample: np.ndarray, job_tiles: int
    ) -> Generator[Progress | LoadingModel, None, ImageModel]:
        """``model`` (loaded in :meth:`preferred_dtype`) in the variant measured fastest here
        for tiles shaped like ``sample``; measured on ``sample`` the first time."""
        result = yield from tuned_variant(
            self.config,
            self.device_info,
            model_key,
            model.loaded,
            sample,
            job_tiles,
            self.cancel.check,
        )
        self.last_tuning = result
        current = Variant.of(model.dtype, model.compiled)
        if result.chosen == current:
            return model
        key = ("tuned", model_key, str(self.device), result.chosen)
        chosen = result.chosen
        return (
            yield from self.cached(
                key, model_key, lambda: build_variant(model.loaded, self.device, chosen)
            )
        )

    def cached(
        self, key: Hashable, name: str, build: Callable[[], T]
    ) -> Generator[LoadingModel, None, T]:
        """``build()`` through the model cache under ``key``; a miss first yields
        ``LoadingModel(name)``, and cancel is checked before and after loading."""
        if key not in self.cache:
            yield LoadingModel(name)
            self.cancel.check()
        started = time.perf_counter()
        model = self.cache.get(key, build)
        self.load_seconds += time.perf_counter() - started
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
        key, compile_options = _compile_options(key, wrapper, self.config)
        options |= compile_options

        def build():
            loaded = load_registered(spec)[0]
            return wrapper(loaded, self.device, dtype, **options)

        return (yield from self.cached(key, spec.id, build))

    def load_registered(
        self, spec: ModelSpec, build: Callable[..., T], *variant: Hashable
    ) -> Generator[LoadingModel, None, T]:
        """``build(*loaded)`` on every weight file of a registry model, each read with its
        sha256 checked and recognised by the one architecture list; cached per device and
        ``variant``. For models that are not one image-to-image network (styles, generators)."""
        key = (spec.id, str(self.device), *variant)
        return (yield from self.cached(key, spec.id, lambda: build(*load_registered(spec))))

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
        key, options = _compile_options(key, wrapper, self.config)

        def build():
            loaded: LoadedModel = load_weights(p)
            dtype = self.preferred_dtype(loaded)
            return wrapper(loaded, self.device, dtype, **options)

        return (yield from self.cached(key, p.name, build))


def _compile_options(
    key: tuple, wrapper: type, config: EngineConfig
) -> tuple[tuple, dict[str, bool]]:
    """Cache key and wrapper options: image models are compiled when ``config.compile`` is "on"
    (any architecture, registry or user file; a compiler failure falls back to eager)."""
    if wrapper is ImageModel and config.compile == "on":
        return (*key, "compiled"), {"compiled": True}
    return key, {}


def spec_weight_path(spec: ModelSpec) -> Path:
    """The checkpoint file of a registry model; a clear error when it has none or it is missing."""
    return registered_files(spec)[0][0]
