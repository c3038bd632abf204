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

from studio.document.landing import land_generated
from studio.engine.events import LoadingModel, Partial, Progress, Result, TaskEvent
from studio.engine.jobs import (
    DIFFUSION_SIZE_RANGE,
    GUIDANCE_RANGE,
    LORA_WEIGHT_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    JobRequest,
    UpscaleParams,
    check_range,
)
from studio.engine.task_table import CliJob, CliReader, TaskCli, TaskDef
from studio.engine.tasks.context import TaskContext
from studio.engine.tasks.denoise import run_denoise
from studio.engine.tasks.denoisers import SD, backend_kind, open_backend
from studio.errors import BadInputError, MissingModelError, StudioError
from studio.geometry import Rect
from studio.models import generate as gen
from studio.models.arch import LoadedModel
from studio.models.archs.vae import ConvVAE
from studio.models.registry import get_model
from studio.models.samplers import DEFAULT_SAMPLER, check_sampler, sampler_names
from studio.task_kind import TaskKind

MODES = ("samples", "interpolate", "variations", "repaint")
MAX_COUNT = 256
MAX_OUT_SIZE = 1024
MAX_STRENGTH = 3.0
NOISE_MODEL = "studio-emoji-gan"
TEXT_MODEL = "studio-text2img"
#: options only a GAN/VAE reads, and options only a denoising model reads
NOISE_ONLY_FIELDS = ("truncation", "seed_b", "out_size")
PROMPT_ONLY_FIELDS = ("prompt", "negative_prompt", "steps", "guidance", "sampler", "loras", "size")


@dataclass(frozen=True)
class GenerateParams:
    """``model``: a registry id (task "generate"), a path to a VAE/GAN weight file, or a Stable
    Diffusion file or folder; "" picks ``studio-text2img`` when there is a prompt, else the
    emoji GAN. The model decides what runs: GAN/VAE as below, denoising models (Studio's
    text-to-image model, Stable Diffusion) through :mod:`studio.engine.tasks.denoise`.

    GAN/VAE: ``truncation`` scales the latents (1 = full variety). ``out_size`` is the side of
    each cell after ``upscale_model`` (a registry upscale id such as "lanczos"); without one,
    cells keep the model's native size (64).

    Denoising models: ``prompt``, ``negative_prompt``, ``steps``, ``guidance``, ``sampler``
    (:mod:`studio.models.samplers`), ``loras`` ((file, weight) pairs, Stable Diffusion only) and
    ``size`` (each image's side; 0 = the model's own; a fixed-size model is enlarged to it by
    ``upscale_model``, default the denoise module's upscaler; Stable Diffusion works at it, and
    in img2img at that area). Mode "variations" is img2img of the request's image (its ``roi``)
    with ``strength`` in [0, 1] (0 returns the input), mode "repaint" (a prompted inpaint)
    repaints where the request's mask is; both give one image the size of the region.
    """

    model: str = ""
    seed: int = 0
    count: int = 16
    truncation: float = 1.0
    mode: str = "samples"
    seed_b: int = 1
    strength: float = 0.5
    upscale_model: str | None = None
    out_size: int = 256
    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    guidance: float = 5.0
    sampler: str = DEFAULT_SAMPLER
    loras: tuple[tuple[str, float], ...] = ()
    size: int = 0

    task: ClassVar[TaskKind] = TaskKind.GENERATE

    def __post_init__(self) -> None:
        if not self.model:
            object.__setattr__(self, "model", TEXT_MODEL if self.prompt else NOISE_MODEL)
        _check(self)

    def unlabelled_fields(self) -> tuple[str, ...]:
        """Fields that did not shape this run (left out of its provenance): a denoising
        model's run reads no noise-model options, a GAN/VAE's no prompt options."""
        try:
            denoising = backend_kind(self.model) is not None
        except StudioError:  # the file is gone: what the params say is all there is
            denoising = bool(self.prompt or self.loras)
        skip = NOISE_ONLY_FIELDS if denoising else PROMPT_ONLY_FIELDS
        if self.mode != "interpolate":
            skip += ("seed_b",)
        if self.mode not in ("variations", "repaint"):
            skip += ("strength",)
        return skip


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
    check_range("steps", params.steps, *STEPS_RANGE)
    check_range("guidance", params.guidance, *GUIDANCE_RANGE)
    check_sampler(params.sampler)
    check_range("image size", params.size, *DIFFUSION_SIZE_RANGE, " px", zero="the model's own")
    for path, weight in params.loras:
        check_range(f"the weight of LoRA {Path(path).name}", weight, *LORA_WEIGHT_RANGE)


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
    denoiser = yield from open_backend(params, ctx)
    if denoiser is not None:
        return (yield from run_denoise(request, denoiser, ctx))
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
    parser.add_argument(
        "--model",
        default="",
        help="generate model id, GAN/VAE file, or Stable Diffusion file or folder (default: "
        f"{TEXT_MODEL} with a prompt, else {NOISE_MODEL})",
    )
    parser.add_argument("--prompt", default=None, help="what to draw (text-to-image models)")
    parser.add_argument("--negative", default="", help="what to keep out of the picture")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps")
    parser.add_argument("--guidance", type=float, default=5.0, help="how closely to follow")
    parser.add_argument("--sampler", default=DEFAULT_SAMPLER, help=", ".join(sampler_names()))
    parser.add_argument("--init", default=None, metavar="IMAGE", help="img2img from this image")
    parser.add_argument(
        "--mask", default=None, help="with --init: repaint only here (white), a prompted inpaint"
    )
    parser.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="FILE[:WEIGHT]",
        help="a LoRA file for a Stable Diffusion model (repeatable; weight 1 by default)",
    )
    parser.add_argument("--seed", type=int, default=0, help="cell i uses seed + i")
    parser.add_argument("--count", type=int, default=None, help="16 from noise, 1 with a prompt")
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
    parser.add_argument(
        "--strength",
        type=float,
        default=None,
        help="how far variations wander (0.5), or how much img2img changes (0.75; 1 with --mask)",
    )
    parser.add_argument(
        "--upscale",
        default=None,
        metavar="MODEL",
        help="enlarge each image with this upscale model to --size",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="side of each image: 64 (native), 128, 256 or 512 for text-to-image models; from "
        "noise, the cell size after --upscale (256)",
    )


def parse_lora(text: str) -> tuple[str, float]:
    """``FILE[:WEIGHT]`` -> (file, weight); weight 1 when none is given."""
    path, sep, tail = text.rpartition(":")
    if sep and path:
        try:
            return path, float(tail)
        except ValueError:
            pass  # a colon in the path itself (C:\\...)
    return text, 1.0


def _cli_job(ns: argparse.Namespace, read: CliReader) -> CliJob:
    if ns.mask and not ns.init:
        raise BadInputError("--mask needs --init IMAGE: the picture whose masked part to repaint")
    if ns.init and ns.variations_of:
        raise BadInputError("give --init (img2img) or --variations-of (VAE), not both")
    check_sampler(ns.sampler)  # before the model is looked up: the first mistake is named
    prompted = ns.prompt is not None or ns.init or ns.lora
    model = ns.model or (TEXT_MODEL if prompted else NOISE_MODEL)
    loras = tuple(parse_lora(text) for text in ns.lora)
    for path, _weight in loras:
        if not Path(path).expanduser().is_file():
            raise MissingModelError(f"{path}: LoRA file not found")
    denoising = backend_kind(model) is not None
    if loras and backend_kind(model) != SD:
        raise BadInputError("--lora works with Stable Diffusion models only (--model FILE)")
    mode, strength = "samples", ns.strength
    if ns.interpolate_to is not None:
        mode = "interpolate"
    if ns.variations_of or ns.init:
        mode, default = "variations", (0.75 if ns.init else 0.5)
        strength = default if strength is None else strength
    if ns.mask:
        mode, strength = "repaint", 1.0 if ns.strength is None else ns.strength
    params = GenerateParams(
        model=model,
        seed=ns.seed,
        count=(1 if denoising else 16) if ns.count is None else ns.count,
        truncation=ns.truncation,
        mode=mode,
        seed_b=ns.interpolate_to if ns.interpolate_to is not None else 1,
        strength=0.5 if strength is None else strength,
        upscale_model=ns.upscale,
        out_size=256 if denoising or ns.size is None else ns.size,
        prompt=ns.prompt or "",
        negative_prompt=ns.negative,
        steps=ns.steps,
        guidance=ns.guidance,
        sampler=ns.sampler,
        loras=loras,
        size=(ns.size or 0) if denoising else 0,
    )
    if ns.init:  # the result is that picture, changed: written like any edit of an input
        return CliJob(params, image=ns.init, mask=ns.mask)
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
    land=land_generated,
    cli=TaskCli(
        "new images from a prompt or from noise (a grid to pick from)", _cli_arguments, _cli_job
    ),
    natural_size=True,
)
