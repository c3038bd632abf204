"""Denoising models for the generate task, opened through the engine's model cache.

The model decides which backend runs: a registry spec of a denoising architecture opens
Studio's ``TextDiffusion`` (fixed 64 px), a file or folder that ``is_sd_source`` opens
``SDBackend`` (any size; its LoRA set is fused into the weights, so it is part of the cache
key), and a GAN/VAE is left to the generate task's own path. Backends are imported lazily by
name, so this module loads without them; tests register fakes with :func:`register_backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from studio.engine.events import LoadingModel, Progress, TaskEvent
from studio.engine.tasks.context import TaskContext
from studio.errors import BadInputError, MissingModelError
from studio.models.diffusion_api import DenoiseBackend, DenoiseRequest
from studio.models.registry import get_model
from studio.task_kind import TaskKind

if TYPE_CHECKING:
    from studio.engine.tasks.generate import GenerateParams

#: registry architectures that are noise generators (the generate task's own path)
NOISE_ARCHS = ("gan", "vae")

#: the kinds of backend: "text" works at its native size only, "sd" at any multiple of 8
TEXT, SD = "text", "sd"


@dataclass
class LoadedBackend:
    """A denoising backend as the model cache holds it. ``flexible``: it works at any size (a
    multiple of 8) rather than only its native one. ``modules``: what the cache's byte budget
    counts (the backend object itself holds no parameters the cache could see). ``sd_model``:
    the Stable Diffusion model under the backend (its run estimates read it)."""

    backend: DenoiseBackend
    kind: str
    flexible: bool
    modules: tuple[torch.nn.Module, ...] = ()
    sd_model: Any = None

    def parameters(self) -> Iterator[torch.Tensor]:
        for module in self.modules:
            yield from module.parameters()

    def buffers(self) -> Iterator[torch.Tensor]:
        for module in self.modules:
            yield from module.buffers()


#: backends registered by name (tests register fakes): name -> (factory(device, dtype), flexible)
_REGISTERED: dict[str, tuple[Callable[[torch.device, torch.dtype], DenoiseBackend], bool]] = {}


def register_backend(
    name: str, factory: Callable[[torch.device, torch.dtype], DenoiseBackend], flexible: bool
) -> None:
    """Make ``name`` a model the generate task opens with ``factory`` (through the cache)."""
    _REGISTERED[name] = (factory, flexible)


def unregister_backend(name: str) -> None:
    _REGISTERED.pop(name, None)


def backend_kind(model: str) -> str | None:
    """The kind of backend ``model`` opens ("text", "sd", a registered name), or None for a
    GAN/VAE, decided without loading it.

    A path that does not exist, or a folder that is not a Stable Diffusion model, is one
    :class:`MissingModelError` / :class:`BadInputError`.
    """
    if model in _REGISTERED:
        return model
    path = Path(model).expanduser()
    looks_like_path = "/" in model or "\\" in model or path.suffix != ""
    if not looks_like_path:
        spec = get_model(model, TaskKind.GENERATE)
        return None if spec.arch in NOISE_ARCHS else TEXT
    if not path.exists():
        raise MissingModelError(f"{model}: no such model file or folder")
    if _is_sd_source(path):
        return SD
    if path.is_dir():
        raise BadInputError(f"{model}: not a Stable Diffusion model folder")
    return None  # a GAN/VAE weight file: the generate task loads (and checks) it


def _is_sd_source(path: Path) -> bool:
    try:
        from studio.models.sd.loading import is_sd_source
    except ImportError:  # Stable Diffusion support not in this build
        return False
    return bool(is_sd_source(path))


def open_backend(
    params: GenerateParams, ctx: TaskContext
) -> Generator[TaskEvent, None, LoadedBackend | None]:
    """The params' denoising backend from the model cache (loading it on a miss), or None when
    the model is a GAN/VAE (after refusing the options those cannot take)."""
    kind = backend_kind(params.model)
    if params.loras and kind != SD:
        raise BadInputError("LoRA files work with Stable Diffusion models only (--model FILE)")
    if kind is None:
        if params.prompt or params.negative_prompt:
            raise BadInputError(
                f"{Path(params.model).name} generates from noise and reads no prompt; use "
                "studio-text2img or a Stable Diffusion model"
            )
        if params.mode == "repaint":
            raise BadInputError(
                "prompted inpaint needs studio-text2img or a Stable Diffusion model"
            )
        return None
    if kind == TEXT:
        return (yield from _open_text(params.model, ctx))
    if kind == SD:
        return (yield from _open_sd(Path(params.model), params, ctx))
    factory, flexible = _REGISTERED[kind]
    dtype = torch.float32

    def build() -> LoadedBackend:
        backend = factory(ctx.device, dtype)
        return LoadedBackend(backend, kind, flexible, _modules_of(backend))

    return (yield from ctx.cached(("denoise", kind, str(ctx.device)), kind, build))


class _AnyPrecision:
    supports_half = True


def _open_text(model_id: str, ctx: TaskContext) -> Generator[LoadingModel, None, LoadedBackend]:
    from studio.models.loading import registered_files

    spec = get_model(model_id, TaskKind.GENERATE)
    dtype = ctx.preferred_dtype(spec)
    path = registered_files(spec)[0][0]  # a clear MissingModelError when not on this machine

    def build() -> LoadedBackend:
        from studio.models.text_diffusion import TextDiffusion

        backend = TextDiffusion.load(path, ctx.device, dtype)
        return LoadedBackend(backend, TEXT, False, _modules_of(backend))

    key = ("denoise", spec.id, str(ctx.device), str(dtype))
    return (yield from ctx.cached(key, spec.id, build))


def _open_sd(
    path: Path, params: GenerateParams, ctx: TaskContext
) -> Generator[LoadingModel | Progress, None, LoadedBackend]:
    """The model from the cache, or loaded once its estimate is known to fit; then put in the
    precision measured fastest here (measured on first use, see :mod:`.sd_tuning`)."""
    source = path.expanduser().resolve()
    lora_paths = []
    for file, weight in params.loras:
        p = Path(file).expanduser().resolve()
        if not p.is_file():
            raise MissingModelError(f"{file}: LoRA file not found")
        lora_paths.append((p, float(weight), p.stat().st_mtime_ns))
    dtype = ctx.preferred_dtype(_AnyPrecision())
    # LoRAs are fused into the weights, so the set (and each file's version) is part of the key
    key = ("denoise", str(source), source.stat().st_mtime_ns, str(ctx.device), str(dtype))
    key = (*key, tuple(lora_paths))

    def build() -> LoadedBackend:
        from studio.models.sd.backend import SDBackend
        from studio.models.sd.loading import load_sd_model

        model = load_sd_model(source, device=ctx.device, dtype=dtype)
        if lora_paths:
            from studio.models.sd.lora import apply_loras

            apply_loras(model, [(p, w) for p, w, _ in lora_paths])
        return LoadedBackend(SDBackend(model), SD, True, _modules_of(model), model)

    if key not in ctx.cache:
        _check_fits_before_loading(source, params, dtype, ctx)
    loaded = yield from ctx.cached(key, source.name, build)
    from studio.engine.tasks.sd_tuning import tuned_pipeline

    pipe = loaded.sd_model.pipe
    ctx.last_tuning = yield from tuned_pipeline(ctx.config, ctx.device_info, pipe, ctx.cancel.check)
    return loaded


def _modules_of(obj: Any) -> tuple[torch.nn.Module, ...]:
    """The torch modules a backend holds (directly, or as a diffusers pipeline's components)."""
    if isinstance(obj, torch.nn.Module):
        return (obj,)
    found: list[torch.nn.Module] = []
    values = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    pipe = getattr(obj, "pipe", None)
    if pipe is not None and hasattr(pipe, "components"):
        values += list(pipe.components.values())
    for value in values:
        if isinstance(value, torch.nn.Module) and not any(value is m for m in found):
            found.append(value)
    return tuple(found)


def memory_free(ctx: TaskContext) -> int:
    """Bytes free on the run's device at this moment: RAM on the CPU, the GPU's free memory
    (and what torch holds unused) on CUDA. Not the engine's tile budget (an eighth of RAM on
    the CPU, capped at 2 GiB), which sizes upscale tiles and would refuse ordinary SD2 and SDXL
    runs."""
    if ctx.device.type == "cuda":
        free = int(torch.cuda.mem_get_info(ctx.device)[0])
        free += int(
            torch.cuda.memory_reserved(ctx.device) - torch.cuda.memory_allocated(ctx.device)
        )
    elif ctx.device.type == "cpu":
        from studio.engine.tasks.preflight import available_memory

        free = available_memory()
    else:
        free = ctx.device_info.memory_budget
    return free


def working_memory(ctx: TaskContext) -> int:
    """Bytes a run's working memory may take: the memory free now, or the configured budget
    (``EngineConfig.memory_budget``, working memory to plan for) when one is set and smaller."""
    free = memory_free(ctx)
    return min(free, ctx.config.memory_budget) if ctx.config.memory_budget else free


def _check_fits_before_loading(
    source: Path, params: GenerateParams, dtype: torch.dtype, ctx: TaskContext
) -> None:
    """Refuse, before gigabytes are read, a run whose weights and working memory cannot fit:
    the family and parameter count come from the file's header or the folder's configs."""
    from studio.models.sd.estimate import check_fits, estimate_source

    count = params.count if params.mode == "samples" else 1
    side = params.size or None  # None: the family's own size
    estimate = estimate_source(
        source,
        side,
        count,
        params.steps,
        dtype=dtype,
        device=ctx.device,
        guidance=params.guidance > 1,
    )
    if estimate is None:
        return
    check_fits(estimate, memory_free(ctx))  # the weights and the run, in the memory free now
    if ctx.config.memory_budget:  # and the run within the configured working budget
        check_fits(estimate, ctx.config.memory_budget, weights_loaded=True)


def check_run_fits(loaded: LoadedBackend, req: DenoiseRequest, ctx: TaskContext) -> None:
    """Refuse a Stable Diffusion run that cannot fit in the memory free now, with the reason
    (its estimate: peak bytes from the model's size and dtypes, the resolution and the batch)."""
    if loaded.sd_model is None:
        return
    from studio.models.sd.estimate import check_fits, estimate_run

    w, h = (req.width, req.height) if req.width else loaded.backend.native_size
    estimate = estimate_run(loaded.sd_model, w, h, req.count, req.steps, guidance=req.guidance > 1)
    # the weights are loaded by now (and counted as used): the working memory must fit
    check_fits(estimate, working_memory(ctx), weights_loaded=True)
