"""Inpaint and outpaint: fill what the artist masked, touch nothing else.

Per region (connected masked area plus context): crop at full resolution, downscale only when the
crop exceeds the method's comfortable size, fill, bring the fill back to full size, match its
colour to the surroundings, and blend it in with the grown-and-feathered weight. Pixels whose
weight is zero are copied from the input array, so they are bit-identical. Each region streams to
the canvas as it finishes; cancel is checked between regions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator

import cv2
import numpy as np
import torch

from studio.engine.inpaint_choice import NETWORK, auto_filler, hybrid_filler
from studio.engine.inpaint_regions import (
    color_match,
    grow_and_feather,
    outpaint_tiles,
    plan_regions,
    working_scale,
)
from studio.engine.jobs import MAX_OUTPAINT, InpaintParams, JobRequest, OutpaintParams
from studio.engine.tasks.context import TaskContext, is_weight_path
from studio.engine.tasks.events import Partial, Progress, Result, TaskEvent
from studio.engine.tasks.preflight import check_fits, image_size
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models.descriptor import InpaintModel
from studio.models.patchmatch import patchmatch_inpaint
from studio.models.registry import get_model

#: (image HxWx3 float32 [0,1], hole HxW float32 {0,1}) -> filled HxWx3 float32
Filler = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _cv2_filler(flag: int) -> Filler:
    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        # cv2.inpaint treats channels independently, so RGB order is preserved as given
        u8 = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        radius = 5
        out = cv2.inpaint(u8, (hole > 0).astype(np.uint8), radius, flag)
        return out.astype(np.float32) / 255.0

    return fill


def classical_filler(method: str, seed: int) -> Filler:
    if method == "telea":
        return _cv2_filler(cv2.INPAINT_TELEA)
    if method == "navier-stokes":
        return _cv2_filler(cv2.INPAINT_NS)
    if method == "patchmatch":
        return lambda image, hole: patchmatch_inpaint(image, hole, seed=seed)
    raise BadInputError(f"unknown classical inpainting method '{method}'")


USER_MAX_SIDE = 1024


def _filler_for(params, ctx: TaskContext) -> Generator[TaskEvent, None, tuple[Filler, int]]:
    if is_weight_path(params.method):
        model = yield from ctx.load_user_model(params.method, InpaintModel)
        purpose = model.loaded.extra.get("purpose")
        if model.loaded.in_channels != 4 and purpose != "Inpainting":
            kind = purpose or "unknown"
            raise BadInputError(f"{params.method}: not an inpainting model ({kind})")
        # a fixed-size model (MAT) works at its own size: larger contexts are scaled to it
        return model, model.native_side or USER_MAX_SIDE
    spec = get_model(params.method, "inpaint")
    if spec.arch == "classical":
        return classical_filler(spec.id, params.seed), spec.max_side
    if spec.arch in ("hybrid", "auto"):  # studio-inpaint, plus texture where the hole is large
        net_spec = get_model(NETWORK, "inpaint")
        # the hybrid keeps only the network's low frequencies: one pass, no flip average
        quick = yield from ctx.load_model(net_spec, torch.float32, InpaintModel)
        if spec.arch == "hybrid":
            return hybrid_filler(quick, params.seed), spec.max_side
        network = yield from ctx.load_inpaint_model(net_spec)
        return auto_filler(network, quick, params.seed), spec.max_side
    model = yield from ctx.load_inpaint_model(spec)
    return model, spec.max_side


def _check_pixels(image: np.ndarray) -> float:
    """The maximum pixel value of an 8- or 16-bit RGB[A] image; clear errors otherwise."""
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise BadInputError(f"expected an RGB or RGBA image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise BadInputError(f"expected 8- or 16-bit pixels, got {image.dtype}")
    return float(np.iinfo(image.dtype).max)


def fill_regions(
    image: np.ndarray,
    alpha: np.ndarray,
    fill: Filler,
    *,
    padding: int,
    max_side: int,
    match_color: bool,
    ctx: TaskContext,
    stage: str = "filling",
    unknown: np.ndarray | None = None,
) -> Generator[TaskEvent, None, np.ndarray]:
    """Fill every region of ``alpha`` > 0 in ``image`` (uint8/uint16 RGB[A]); returns a copy.

    ``unknown`` (bool HxW): pixels the method must not take as context either (an outpaint's
    tiles still to be filled); they are filled along but not written.

    Only the context crops are converted to float, and only the pixels with a blend weight
    above zero are computed and written. When a region is filled at a reduced working scale,
    the colour match runs at that scale too (it only corrects low frequencies) and the matched
    fill is then brought back to full size.
    """
    maxval = _check_pixels(image)
    regions = plan_regions(alpha, padding)
    out = image.copy()
    h, w = image.shape[:2]
    yield Progress(0, len(regions), stage)
    for index, region in enumerate(regions):
        ctx.cancel.check()
        ctx_box = region.context
        crop = image[ctx_box.slices][:, :, :3].astype(np.float32) / maxval
        weight = alpha[ctx_box.slices]
        touched = weight > 0
        hole = touched.astype(np.float32)
        if unknown is not None:
            hole[unknown[ctx_box.slices]] = 1.0
        scale = working_scale(ctx_box, max_side)
        if scale < 1.0:
            sw, sh = max(8, round(ctx_box.w * scale)), max(8, round(ctx_box.h * scale))
            small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
            small_hole = (cv2.resize(hole, (sw, sh), interpolation=cv2.INTER_AREA) > 0).astype(
                np.float32
            )
            filled = np.clip(fill(small, small_hole), 0.0, 1.0)
            if match_color:
                filled = color_match(filled, small, small_hole)
            filled = cv2.resize(filled, (ctx_box.w, ctx_box.h), interpolation=cv2.INTER_CUBIC)
        else:
            filled = np.clip(fill(crop, hole), 0.0, 1.0)
            if match_color:
                filled = color_match(filled, crop, hole)
        wt = weight[touched][:, None]
        blended = wt * np.clip(filled[touched], 0.0, 1.0) + (1.0 - wt) * crop[touched]
        target = out[ctx_box.slices]
        target[:, :, :3][touched] = (blended * maxval + 0.5).astype(image.dtype)
        yield Partial(ctx_box, target.copy(), (w, h), True)
        yield Progress(index + 1, len(regions), stage)
    return out


def run_inpaint(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    params: InpaintParams = request.params
    image, mask = request.image, request.mask
    if mask is None:
        raise BadInputError("inpainting needs a mask: paint over what should be filled")
    if mask.shape != image.shape[:2]:
        raise BadInputError(
            f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}; they must be the same size"
        )
    if not (mask >= 0.5).any():
        raise BadInputError("the mask is empty: paint over what should be filled")
    check_fits(params, image_size(image), ctx.device_info.memory_budget)
    filler, max_side = yield from _filler_for(params, ctx)
    alpha = grow_and_feather(mask.astype(np.float32), params.grow, params.feather)
    if not (alpha > 0).any():
        raise BadInputError(
            f"shrinking the mask by {-params.grow} px leaves nothing to fill; "
            "use a smaller shrink (grow closer to 0)"
        )
    if (alpha > 0).all() and params.method in ("telea", "navier-stokes", "patchmatch"):
        raise BadInputError("the mask covers the whole image: nothing is left to fill from")
    out = yield from fill_regions(
        image,
        alpha,
        filler,
        padding=params.padding,
        max_side=params.max_side or max_side,
        match_color=params.color_match,
        ctx=ctx,
    )
    h, w = image.shape[:2]
    return Result(out, Rect(0, 0, w, h), {"method": params.method})


def margins_for_aspect(width: int, height: int, aspect: float) -> dict[str, int]:
    """Margins that extend ``width`` x ``height`` to ``aspect`` (w/h), split evenly."""
    if not (math.isfinite(aspect) and aspect > 0):
        raise BadInputError("the aspect ratio must be a positive number, e.g. 16:9")
    if width / height < aspect:
        extra = round(height * aspect) - width
        margins = {"left": extra // 2, "right": extra - extra // 2, "top": 0, "bottom": 0}
    else:
        extra = round(width / aspect) - height
        margins = {"left": 0, "right": 0, "top": extra // 2, "bottom": extra - extra // 2}
    if max(margins.values()) > MAX_OUTPAINT:
        raise BadInputError(
            f"extending {width}x{height} to the aspect ratio {aspect:.3g} would add "
            f"{extra} px; outpaint adds at most {MAX_OUTPAINT} px on a side"
        )
    return margins


def parse_aspect(text: str) -> float:
    """'16:9', '16/9' or '1.78' -> 1.777..."""
    try:
        if ":" in text or "/" in text:
            w, h = text.replace("/", ":").split(":")
            value = float(w) / float(h)
        else:
            value = float(text)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(text)
        return value
    except (ValueError, ZeroDivisionError):
        raise BadInputError(f"'{text}' is not an aspect ratio (use e.g. 16:9)") from None


def _counted(
    fill: Generator[TaskEvent, None, np.ndarray], index: int, count: int
) -> Generator[TaskEvent, None, np.ndarray]:
    """``fill``'s events, with its progress reported as tile ``index`` of ``count``."""
    while True:
        try:
            event = next(fill)
        except StopIteration as stop:
            return stop.value
        if isinstance(event, Progress):
            if count == 1:
                yield event
            elif event.done == event.total:
                yield Progress(index + 1, count, event.stage)
            continue
        yield event


def run_outpaint(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    p: OutpaintParams = request.params
    sides = (p.left, p.right, p.top, p.bottom)
    if min(sides) < 0 or max(sides) > MAX_OUTPAINT:
        raise BadInputError(f"outpaint margins must be between 0 and {MAX_OUTPAINT} px")
    if not any(sides):
        raise BadInputError("outpaint needs at least one side to extend")
    image = request.image
    h, w = image.shape[:2]
    check_fits(p, image_size(image), ctx.device_info.memory_budget)
    # Start from mirrored content so every method sees plausible colours at the border.
    padded = cv2.copyMakeBorder(
        image,
        p.top,
        p.bottom,
        p.left,
        p.right,
        cv2.BORDER_REFLECT_101 if min(h, w) > max(sides) else cv2.BORDER_REPLICATE,
    )
    mask = np.ones(padded.shape[:2], np.float32)
    mask[p.top : p.top + h, p.left : p.left + w] = 0.0
    if padded.shape[2] == 4:
        padded[:, :, 3][mask > 0] = np.iinfo(image.dtype).max
    filler, max_side = yield from _filler_for(p, ctx)
    # the feather reaches into the original only near the seam; deeper pixels stay identical
    alpha = grow_and_feather(mask, 0, p.feather)
    oh, ow = padded.shape[:2]
    original = Rect(p.left, p.top, w, h)
    # a tile's context reaches max(padding, half its size) each side (plan_regions): tiles
    # this size are filled at full resolution
    padding = 64
    tile_side = max(16, min(max_side // 2, max_side - 2 * padding))
    tiles = (
        outpaint_tiles(alpha, original, tile_side)
        if max_side and max(oh, ow) > max_side
        else [Rect(0, 0, ow, oh)]
    )
    if len(tiles) > 1:
        yield Progress(0, len(tiles), "extending")
    out = padded
    pending = mask > 0  # new area not filled yet: mirrored start, not context
    for index, tile in enumerate(tiles):
        part = np.zeros_like(alpha)
        part[tile.slices] = alpha[tile.slices]
        unknown = pending if len(tiles) > 1 else None
        out = yield from _counted(
            fill_regions(
                out,
                part,
                filler,
                padding=padding,
                max_side=max_side,
                match_color=False,
                ctx=ctx,
                stage="extending",
                unknown=unknown,
            ),
            index,
            len(tiles),
        )
        pending[tile.slices] = False
    info = {"method": p.method, "offset": (p.left, p.top)}
    return Result(out, Rect(0, 0, ow, oh), info)
