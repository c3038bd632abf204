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

import argparse
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from studio.document.landing import land_new_picture
from studio.engine.events import LoadingModel, Partial, Progress, Result, TaskEvent
from studio.engine.jobs import SEED_RANGE, JobRequest, UpscaleParams, check_range
from studio.engine.task_table import CliJob, CliReader, TaskCli, TaskDef
from studio.engine.tasks.context import TaskContext
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models import generate as gen
from studio.models.arch import LoadedModel
from studio.models.archs.vae import ConvVAE
from studio.models.registry import get_model
from studio.task_kind import TaskKind

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

    task: ClassVar[TaskKind] = TaskKind.GENERATE

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


def load_generator(model: str, ctx: TaskContext) -> Generator[TaskEvent, None, torch.nn.Module]:
    """The generator module on the task's device, from the model cache (loaded on a miss):
    a registry id (its files' sha256 checked) or the path of the artist's own file."""
    candidate = Path(model).expanduser()
    if candidate.suffix and candidate.is_file():
        path = candidate.resolve()

        def generator_module(loaded: LoadedModel, device: torch.device, *_) -> torch.nn.Module:
            return gen.as_generator(loaded, path.name).module.to(device)

        return (yield from ctx.load_user_model(path, generator_module))
    spec = get_model(model, TaskKind.GENERATE)

    def build_registered(loaded: LoadedModel) -> torch.nn.Module:
        return gen.as_generator(loaded, spec.files[0].name).module.to(ctx.device)

    return (yield from ctx.load_registered(spec, build_registered, TaskKind.GENERATE))


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


# -- the task's row ------------------------------------------------------------------------------
def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="the grid image; with --count 1 just the image")
    parser.add_argument("--noise", action="store_true", help="generate from noise (the default)")
    parser.add_argument("--model", default="studio-emoji-gan", help="generate model id or file")
    parser.add_argument("--seed", type=int, default=0, help="cell i uses seed + i")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument(
        "--truncation", type=float, default=1.0, help="< 1: safer, less varied; > 1: wilder"
    )
    parser.add_argument(
        "--interpolate-to",
        type=int,
        default=None,
        metavar="SEED_B",
        help="a strip from --seed to this seed instead of a grid",
    )
    parser.add_argument(
        "--variations-of",
        default=None,
        metavar="IMAGE",
        help="variations of this image (VAE models)",
    )
    parser.add_argument("--strength", type=float, default=0.5, help="how far variations wander")
    parser.add_argument(
        "--upscale",
        default=None,
        metavar="MODEL",
        help="enlarge each image with this upscale model to --size",
    )
    parser.add_argument("--size", type=int, default=256, help="cell size after --upscale")


def _cli_job(ns: argparse.Namespace, read: CliReader) -> CliJob:
    mode = "samples"
    if ns.interpolate_to is not None:
        mode = "interpolate"
    if ns.variations_of:
        mode = "variations"
    params = GenerateParams(
        model=ns.model,
        seed=ns.seed,
        count=ns.count,
        truncation=ns.truncation,
        mode=mode,
        seed_b=ns.interpolate_to if ns.interpolate_to is not None else 1,
        strength=ns.strength,
        upscale_model=ns.upscale,
        out_size=ns.size,
    )
    image = read.picture(ns.variations_of)[:, :, :3] if ns.variations_of else no_pixels()
    return CliJob(params, pixels=image)  # one cell: the image itself


def _models() -> list:
    """Generators, and the upscalers that may enlarge their cells."""
    from studio.models.registry import all_models

    return all_models(TaskKind.GENERATE) + all_models(TaskKind.UPSCALE)


GENERATE_TASK = TaskDef(
    kind=TaskKind.GENERATE,
    title="Generate",
    params=GenerateParams,
    run=run_generate,
    models=_models,
    land=land_new_picture,
    cli=TaskCli("new images from noise (a grid to pick from)", _cli_arguments, _cli_job),
    natural_size=True,
)
