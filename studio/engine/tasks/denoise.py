"""The diffusion half of the generate task: text-to-image, img2img and prompted inpaint through
any :class:`~studio.models.diffusion_api.DenoiseBackend` (Studio's own text-to-image model, an
artist's Stable Diffusion file).

The model decides what runs (:mod:`studio.engine.tasks.denoisers` opens it through the engine's
model cache, so a second job reuses it); a GAN/VAE stays with :mod:`studio.engine.tasks.generate`.

Every step: Cancel is checked, then one non-final preview (the engine thins them out) and one
:class:`Progress`. A fixed-size model (64 px) works at its own size and the upscale task
enlarges each image to ``size`` in the same job; Stable Diffusion works at ``size`` directly.
img2img and inpaint work on the request's region (its ``roi``, else the whole image) and return
one image that size, so the result lands as a region of the document (``info["lands"]``), not a
new picture. Prompted inpaint crops each masked area with context, works at the model's size,
and pastes back with the grown-and-feathered weight: pixels where it is 0 are copied, so they
stay bit-identical.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from studio import pixels
from studio.engine.events import LoadingModel, Partial, Progress, Result, TaskEvent
from studio.engine.inpaint_regions import grow_and_feather, plan_regions
from studio.engine.jobs import JobRequest, UpscaleParams
from studio.engine.tasks.context import TaskContext
from studio.engine.tasks.denoisers import SD, LoadedBackend, check_run_fits
from studio.errors import BadInputError, ModelOutputError
from studio.geometry import Rect
from studio.models import generate as gen
from studio.models.diffusion_api import DenoiseRequest

if TYPE_CHECKING:
    from studio.engine.tasks.generate import GenerateParams

#: enlarges the 64 px model's images to 128-512 px: made for flat-shaded art, 1.2 MB, fast
DEFAULT_UPSCALER = "realesr-animevideov3"
#: prompted inpaint: mask grown by GROW px, feathered over FEATHER px outside that; each area
#: sees at least PADDING px of context
INPAINT_GROW, INPAINT_FEATHER, INPAINT_PADDING = 2, 8, 32
#: flexible models work at sizes in multiples of this (the latent's downscale factor)
SIZE_MULTIPLE = 8


def run_denoise(
    request: JobRequest, loaded: LoadedBackend, ctx: TaskContext
) -> Generator[TaskEvent, None, Result]:
    """The generate task for a denoising model: by the params' mode."""
    params: GenerateParams = request.params
    if params.mode == "samples":
        return (yield from _text_to_image(params, loaded, ctx))
    if params.mode == "interpolate":
        raise BadInputError("an interpolation strip needs a GAN or VAE model")
    if params.count != 1:
        raise BadInputError("img2img and inpaint make one image at a time (count 1)")
    if not 0.0 <= params.strength <= 1.0:
        raise BadInputError(f"img2img strength must be between 0 and 1, got {params.strength:g}")
    region, image, mask = _region(request, needs_mask=params.mode == "repaint")
    if params.strength == 0.0:  # exactly the input, whatever the model would round-trip
        out = image.copy()
        yield Partial(Rect(0, 0, region.w, region.h), out, (region.w, region.h), True)
    elif params.mode == "variations":
        out = yield from _img2img(params, loaded, image, ctx)
    else:
        out = yield from _inpaint(params, loaded, image, mask, ctx)
    info = _info(params, loaded, ctx) | {"lands": "region", "region": region.tuple()}
    return Result(out, Rect(0, 0, region.w, region.h), info)


def _info(params: GenerateParams, loaded: LoadedBackend, ctx: TaskContext) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model": Path(params.model).name if loaded.kind == SD else params.model,
        "mode": params.mode,
        "prompt": params.prompt,
        "steps": params.steps,
        "guidance": params.guidance,
        "sampler": params.sampler,
    }
    if params.negative_prompt:
        info["negative_prompt"] = params.negative_prompt
    if params.loras:
        info["loras"] = [(Path(p).name, w) for p, w in params.loras]
    if params.mode != "samples":
        info["strength"] = params.strength
    if loaded.kind == SD and ctx.last_tuning is not None:
        info["variant"] = ctx.last_tuning.summary()  # the precisions measured fastest here
    return info


def _request(params: GenerateParams, **fields: Any) -> DenoiseRequest:
    return DenoiseRequest(
        prompt=params.prompt,
        negative=params.negative_prompt,
        seed=params.seed,
        steps=params.steps,
        guidance=params.guidance,
        sampler=params.sampler,
        **fields,
    )


def denoise_steps(
    loaded: LoadedBackend,
    req: DenoiseRequest,
    ctx: TaskContext,
    show: Callable[[np.ndarray], Partial],
    stage: str = "denoising",
) -> Generator[TaskEvent, None, np.ndarray]:
    """Drive the backend: Cancel checked before every step, then ``show(preview)`` (a
    non-final :class:`Partial`) and a :class:`Progress`; returns its images."""
    check_run_fits(loaded, req, ctx)
    steps = loaded.backend.denoise(req)
    started = time.perf_counter()
    try:
        while True:
            ctx.cancel.check()
            try:
                step = next(steps)
            except StopIteration as stop:
                images = np.asarray(stop.value)
                break
            yield show(np.asarray(step.preview))
            yield Progress(step.index, step.total, stage, time.perf_counter() - started)
    finally:
        steps.close()  # a cancelled run leaves nothing half-done
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != req.count:
        raise ModelOutputError(f"the model returned {images.shape} {images.dtype} images")
    return images


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at ``width`` x ``height`` (area when shrinking, cubic when enlarging)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width * height < image.shape[0] * image.shape[1]
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=method)


def _working_size(loaded: LoadedBackend, params: GenerateParams) -> tuple[int, int, int]:
    """(width, height) the model works at for text-to-image, and each finished image's side."""
    nw, nh = loaded.backend.native_size
    if not loaded.flexible:
        return nw, nh, params.size or nw
    side = _multiple(params.size) if params.size else 0
    return (side or nw), (side or nh), side or nw


def _multiple(n: float) -> int:
    return max(SIZE_MULTIPLE, round(n / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def _text_to_image(
    params: GenerateParams, loaded: LoadedBackend, ctx: TaskContext
) -> Generator[TaskEvent, None, Result]:
    width, height, cell = _working_size(loaded, params)
    rows, cols = gen.grid_shape(params.count)
    grid_w, grid_h = gen.grid_size(rows, cols, cell)
    canvas = np.full((grid_h, grid_w, 3), 255, np.uint8)

    def show(preview: np.ndarray) -> Partial:
        shown = canvas.copy()
        for i, image in enumerate(preview[: params.count]):
            x, y = gen.cell_origin(i, cols, cell)
            shown[y : y + cell, x : x + cell] = resize(image[:, :, :3], cell, cell)
        return Partial(Rect(0, 0, grid_w, grid_h), shown, (grid_w, grid_h), False)

    flex = {"width": width, "height": height} if loaded.flexible else {}
    req = _request(params, count=params.count, **flex)
    images = yield from denoise_steps(loaded, req, ctx, show)
    cells = []
    for i, image in enumerate(images):
        ctx.cancel.check()
        if image.shape[:2] != (cell, cell):
            image = yield from enlarge(image, params.upscale_model, cell, ctx)
        x, y = gen.cell_origin(i, cols, cell)
        canvas[y : y + cell, x : x + cell] = image
        cells.append({"index": i, "seed": params.seed + i, "rect": (x, y, cell, cell)})
        yield Partial(Rect(x, y, cell, cell), image, (grid_w, grid_h), True)
    info = _info(params, loaded, ctx) | {"cell_size": cell, "grid": (rows, cols), "cells": cells}
    return Result(canvas, Rect(0, 0, grid_w, grid_h), info)


def enlarge(
    image: np.ndarray, upscaler: str | None, side: int, ctx: TaskContext
) -> Generator[TaskEvent, None, np.ndarray]:
    """``image`` brought to ``side`` x ``side``: the upscale task (``upscaler``, default
    :data:`DEFAULT_UPSCALER`) when enlarging, whose tiles are not forwarded; area when shrinking."""
    if side <= image.shape[1]:
        return resize(image, side, side)
    from studio.engine.tasks.upscale import run_upscale

    up = UpscaleParams(model=upscaler or DEFAULT_UPSCALER, target_width=side)
    inner = run_upscale(JobRequest(up, image), ctx)
    while True:
        try:
            event = next(inner)
        except StopIteration as stop:
            return resize(stop.value.image[:, :, :3], side, side)
        if isinstance(event, LoadingModel):
            yield event
        ctx.cancel.check()


def _region(request: JobRequest, needs_mask: bool) -> tuple[Rect, np.ndarray, np.ndarray | None]:
    """The region the job works on (the ``roi``, else the whole image), its pixels and mask."""
    image = request.image
    pixels.check_image(image)
    bounds = Rect(0, 0, image.shape[1], image.shape[0])
    region = bounds if request.roi is None else request.roi.intersect(bounds)
    if region.is_empty() or min(region.w, region.h) < 8:
        raise BadInputError("img2img needs an image of at least 8x8 px (the selection is empty)")
    mask = None
    if needs_mask:
        if request.mask is None or request.mask.shape != image.shape[:2]:
            raise BadInputError("prompted inpaint needs a mask the size of the image")
        mask = request.mask[region.slices].astype(np.float32)
        if not (mask >= 0.5).any():
            raise BadInputError("the mask is empty: paint over what should be repainted")
    return region, image[region.slices], mask


def work_size(loaded: LoadedBackend, width: int, height: int, side: int = 0) -> tuple[int, int]:
    """The size a model works on a ``width`` x ``height`` crop at: a fixed model's own size; a
    flexible one's native area (or ``side`` squared) at that crop's aspect, in multiples of 8."""
    nw, nh = loaded.backend.native_size
    if not loaded.flexible:
        return nw, nh
    area = side * side if side else nw * nh
    scale = (area / (width * height)) ** 0.5
    return _multiple(width * scale), _multiple(height * scale)


def _img2img(
    params: GenerateParams, loaded: LoadedBackend, image: np.ndarray, ctx: TaskContext
) -> Generator[TaskEvent, None, np.ndarray]:
    h, w = image.shape[:2]
    ww, wh = work_size(loaded, w, h, params.size)
    init = resize(pixels.to_8bit(image)[:, :, :3], ww, wh)

    def show(preview: np.ndarray) -> Partial:
        return Partial(Rect(0, 0, w, h), resize(preview[0][:, :, :3], w, h), (w, h), False)

    flex = {"width": ww, "height": wh} if loaded.flexible else {}
    req = _request(params, init=init, strength=params.strength, **flex)
    images = yield from denoise_steps(loaded, req, ctx, show)
    out = resize(images[0], w, h)
    if image.dtype != np.uint8 or image.shape[2] == 4:
        full = image.copy()
        full[:, :, :3] = pixels.quantize(pixels.to_unit(out), image.dtype)
        out = full
    yield Partial(Rect(0, 0, w, h), out, (w, h), True)
    return out


def _inpaint(
    params: GenerateParams,
    loaded: LoadedBackend,
    image: np.ndarray,
    mask: np.ndarray,
    ctx: TaskContext,
) -> Generator[TaskEvent, None, np.ndarray]:
    """Each masked area cropped with context, repainted at the model's size, pasted back with
    the grown-and-feathered weight; where the weight is 0 the input is copied."""
    alpha = grow_and_feather(mask, INPAINT_GROW, INPAINT_FEATHER)
    h, w = image.shape[:2]
    out = image.copy()
    regions = plan_regions(alpha, INPAINT_PADDING)
    for index, region in enumerate(regions):
        box = region.context
        crop = pixels.to_unit(image[box.slices][:, :, :3])
        weight = alpha[box.slices]
        touched = weight > 0
        ww, wh = work_size(loaded, box.w, box.h, params.size)
        init = pixels.quantize(resize(crop, ww, wh), np.uint8)
        hole = (resize(touched.astype(np.float32), ww, wh) > 0).astype(np.float32)
        wt = weight[touched][:, None]

        def paste(filled: np.ndarray, box=box, crop=crop, touched=touched, wt=wt) -> np.ndarray:
            """``filled`` (uint8, working size) blended into the crop inside the weight."""
            fill = pixels.to_unit(resize(filled[:, :, :3], box.w, box.h))
            target = out[box.slices].copy()
            blended = wt * fill[touched] + (1.0 - wt) * crop[touched]
            target[:, :, :3][touched] = pixels.quantize(blended, image.dtype)
            return target

        def show(preview: np.ndarray, box=box, paste=paste) -> Partial:
            return Partial(box, paste(preview[0]), (w, h), False)

        flex = {"width": ww, "height": wh} if loaded.flexible else {}
        req = _request(params, init=init, mask=hole, strength=params.strength, **flex)
        stage = "repainting" if len(regions) == 1 else f"repainting {index + 1}/{len(regions)}"
        images = yield from denoise_steps(loaded, req, ctx, show, stage)
        out[box.slices] = paste(images[0])
        yield Partial(box, out[box.slices].copy(), (w, h), True)
    return out
