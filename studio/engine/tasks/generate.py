"""Generate from noise: a grid of seeded samples, an interpolation strip, or variations of the
image on the canvas, streamed one finished image at a time.

Cell ``i`` of a "samples" grid is seed ``seed + i`` (so the grid is the same images whatever the
count), of a "variations" grid the input's posterior mean plus ``strength`` x the noise of seed
``seed + i``, and of an "interpolate" strip the point ``i / (count - 1)`` of the way from seed
``seed`` to seed ``seed_b``. Each cell is decoded alone (batch of one), so it is exactly the
image the same seed gives anywhere else; cancel is checked between cells. With ``upscale_model``
each cell goes through the upscale task's machinery to ``out_size`` pixels before it streams.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studio.engine.jobs import SEED_RANGE, JobRequest, UpscaleParams, check_range
from studio.engine.tasks.context import TaskContext, spec_weight_path
from studio.engine.tasks.events import LoadingModel, Partial, Progress, Result, TaskEvent
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models import generate as gen
from studio.models.archs.vae import ConvVAE

MODES = ("samples", "interpolate", "variations")
MAX_COUNT = 256
MAX_OUT_SIZE = 1024
MAX_STRENGTH = 3.0


@dataclass(frozen=True)
class GenerateParams:
    """``model``: a registry id (task "generate") or a path to a VAE/GAN weight file.

    ``truncation`` scales the latents (1 = full variety). ``out_size`` is the side of each cell
    after ``upscale_model`` (a registry upscale id such as "lanczos"); without one, cells keep
    the model's native size (64).
    """

    model: str = "studio-emoji-gan"
    seed: int = 0
    count: int = 16
    truncation: float = 1.0
    mode: str = "samples"
    seed_b: int = 1
    strength: float = 0.5
    upscale_model: str | None = None
    out_size: int = 256

    task = "generate"

    def __post_init__(self) -> None:
        _check(self)


def _check(params: GenerateParams) -> None:
    if params.mode not in MODES:
        raise BadInputError(f"unknown generate mode '{params.mode}' (use {', '.join(MODES)})")
    low = 2 if params.mode == "interpolate" else 1
    check_range("count", params.count, low, MAX_COUNT)
    check_range("seed", params.seed, SEED_RANGE[0], SEED_RANGE[1] - params.count)
    check_range("the seed to interpolate to", params.seed_b, *SEED_RANGE)
    if not 0.0 < params.truncation <= 2.0:  # also false for NaN
        raise BadInputError(f"truncation must be in (0, 2], got {params.truncation:g}")
    check_range("strength", params.strength, 0.0, MAX_STRENGTH)
    check_range("size", params.out_size, 16, MAX_OUT_SIZE, " px")


def _weights_path(model: str) -> tuple[str, Path, str | None]:
    """(cache id, weight file, expected sha256) for a registry id or a file path."""
    candidate = Path(model).expanduser()
    if candidate.suffix and candidate.is_file():
        return str(candidate.resolve()), candidate, None
    from studio.models.registry import get_model

    spec = get_model(model, "generate")
    return spec.id, spec_weight_path(spec), spec.files[0].sha256


def load_generator(model: str, ctx: TaskContext) -> Generator[TaskEvent, None, torch.nn.Module]:
    """The generator module on the task's device, from the model cache (loaded on a miss)."""
    model_id, path, sha = _weights_path(model)
    key = (model_id, str(ctx.device), "generate")

    def build() -> torch.nn.Module:
        return gen.load_generator(path, sha).module.to(ctx.device)

    return (yield from ctx.cached(key, model_id, build))


def no_pixels() -> np.ndarray:
    """The input image of a job that needs none ("samples" and "interpolate" modes)."""
    return np.zeros((1, 1, 3), np.uint8)


def _upscale(
    cell: np.ndarray, params: GenerateParams, ctx: TaskContext
) -> Generator[TaskEvent, None, np.ndarray]:
    """``cell`` enlarged to out_size by the upscale task; its tiles are not forwarded."""
    from studio.engine.tasks.upscale import run_upscale

    up = UpscaleParams(model=params.upscale_model or "lanczos", target_width=params.out_size)
    inner = run_upscale(JobRequest(up, cell), ctx)
    while True:
        try:
            event = next(inner)
        except StopIteration as stop:
            return stop.value.image
        if isinstance(event, LoadingModel):
            yield event
        ctx.cancel.check()


def _latents(
    params: GenerateParams, model: torch.nn.Module, request: JobRequest
) -> tuple[torch.Tensor, list[int | None]]:
    """All latents of the job (tiny: count x Z) and the seed shown for each cell."""
    seeds = list(range(params.seed, params.seed + params.count))
    if params.mode == "samples":
        return gen.sample_latents(model, seeds, params.truncation), list(seeds)
    if params.mode == "interpolate":
        z = gen.interpolation_latents(
            model, params.seed, params.seed_b, params.count, params.truncation
        )
        return z, [params.seed] + [None] * (params.count - 2) + [params.seed_b]
    if not isinstance(model, ConvVAE):
        raise BadInputError("variations need a VAE model (a GAN cannot encode an image)")
    image = request.image
    if request.roi is not None and not request.roi.is_empty():
        r = request.roi
        image = image[r.y : r.bottom, r.x : r.right]
    if image.size == 0:
        raise BadInputError("variations need an image (the selection is empty)")
    return gen.variation_latents(model, image, seeds, params.strength), list(seeds)


def run_generate(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    params: GenerateParams = request.params
    model = yield from load_generator(params.model, ctx)
    latents, seeds = _latents(params, model, request)
    native = int(model.image_size)
    cell = params.out_size if params.upscale_model else native
    rows, cols = gen.grid_shape(params.count, params.mode)
    width, height = gen.grid_size(rows, cols, cell)
    canvas = np.full((height, width, 3), 255, np.uint8)
    cells = []
    started = time.perf_counter()
    yield Progress(0, params.count, "generating")
    for i in range(params.count):
        ctx.cancel.check()
        image = gen.decode(model, latents[i : i + 1])[0]
        if params.upscale_model:
            image = yield from _upscale(image, params, ctx)
        x, y = gen.cell_origin(i, cols, cell)
        canvas[y : y + cell, x : x + cell] = image
        rect = Rect(x, y, cell, cell)
        cells.append({"index": i, "seed": seeds[i], "rect": (x, y, cell, cell)})
        yield Partial(rect, image, (width, height), True)
        yield Progress(i + 1, params.count, "generating", time.perf_counter() - started)
    info = {
        "model": params.model,
        "mode": params.mode,
        "truncation": params.truncation,
        "cell_size": cell,
        "grid": (rows, cols),
        "cells": cells,
    }
    if params.mode == "variations":
        info["strength"] = params.strength
    return Result(canvas, Rect(0, 0, width, height), info)
