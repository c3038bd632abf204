"""Inpaint and outpaint: fill what the artist masked, touch nothing else.

Per region (connected masked area plus context): crop at full resolution, downscale only when the
crop exceeds the method's comfortable size, fill, bring the fill back to full size, match its
colour to the surroundings, and blend it in with the grown-and-feathered weight. Pixels whose
weight is zero are copied from the input array, so they are bit-identical. Each region streams to
the canvas as it finishes; cancel is checked between regions.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Generator

import cv2
import numpy as np
import torch

from studio import pixels
from studio.document.landing import land_grown
from studio.engine.events import Partial, Progress, Result, TaskEvent
from studio.engine.inpaint_choice import AUTO, HYBRID, NETWORK, auto_filler, hybrid_filler
from studio.engine.inpaint_regions import (
    color_match,
    grow_and_feather,
    outpaint_tiles,
    plan_regions,
    working_scale,
)
from studio.engine.jobs import (
    MAX_OUTPAINT,
    InpaintParams,
    JobRequest,
    OutpaintParams,
    PromptedFill,
)
from studio.engine.outpaint_texture import texture_outpaint_filler
from studio.engine.task_table import CliJob, CliReader, TaskCli, TaskDef
from studio.engine.tasks.context import TaskContext, is_weight_path
from studio.engine.tasks.preflight import check_fits, image_size
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models.descriptor import InpaintModel
from studio.models.patchmatch import patchmatch_inpaint
from studio.models.registry import get_model
from studio.task_kind import TaskKind

#: (image HxWx3 float32 [0,1], hole HxW float32 {0,1}) -> filled HxWx3 float32
Filler = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _cv2_filler(flag: int) -> Filler:
    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        # cv2.inpaint treats channels independently, so RGB order is preserved as given
        u8 = pixels.quantize(image, np.uint8)
        radius = 5
        out = cv2.inpaint(u8, (hole > 0).astype(np.uint8), radius, flag)
        return pixels.to_unit(out)

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
#: methods whose outpaint is studio-inpaint's fill with texture copied through PatchMatch
#: (:mod:`studio.engine.outpaint_texture`) instead of the method's own fill, tile by tile
LEARNED_FILLS = (NETWORK, HYBRID, AUTO)


def _single_pass_network(ctx: TaskContext) -> Generator[TaskEvent, None, InpaintModel]:
    """studio-inpaint in one pass, no flip average: the texture methods keep only its colours
    and large shapes, so the second (mirrored) pass would buy nothing."""
    spec = get_model(NETWORK, TaskKind.INPAINT)
    return (yield from ctx.load_model(spec, torch.float32, InpaintModel))


def _filler_for(params, ctx: TaskContext) -> Generator[TaskEvent, None, tuple[Filler, int]]:
    if is_weight_path(params.method):
        model = yield from ctx.load_user_model(params.method, InpaintModel)
        purpose = model.loaded.extra.get("purpose")
        if model.loaded.in_channels != 4 and purpose != "Inpainting":
            kind = purpose or "unknown"
            raise BadInputError(f"{params.method}: not an inpainting model ({kind})")
        # a fixed-size model (MAT) works at its own size: larger contexts are scaled to it
        return model, model.native_side or USER_MAX_SIDE
    spec = get_model(params.method, TaskKind.INPAINT)
    if spec.arch == "classical":
        return classical_filler(spec.id, params.seed), spec.max_side
    if spec.arch in ("hybrid", "auto"):  # studio-inpaint, plus texture where the hole is large
        quick = yield from _single_pass_network(ctx)
        if spec.arch == "hybrid":
            return hybrid_filler(quick, params.seed), spec.max_side
        network = yield from ctx.load_inpaint_model(get_model(NETWORK, TaskKind.INPAINT))
        return auto_filler(network, quick, params.seed), spec.max_side
    model = yield from ctx.load_inpaint_model(spec)
    return model, spec.max_side


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
    pixels.check_image(image)
    regions = plan_regions(alpha, padding)
    out = image.copy()
    h, w = image.shape[:2]
    yield Progress(0, len(regions), stage)
    for index, region in enumerate(regions):
        ctx.cancel.check()
        ctx_box = region.context
        crop = pixels.to_unit(image[ctx_box.slices][:, :, :3])
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
        target[:, :, :3][touched] = pixels.quantize(blended, image.dtype)
        yield Partial(ctx_box, target.copy(), (w, h), True)
        yield Progress(index + 1, len(regions), stage)
    return out


def run_inpaint(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    params: InpaintParams = request.params
    image, mask = request.image, request.mask
    pixels.check_image(image)
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
    pixels.check_image(image)
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
        padded[:, :, 3][mask > 0] = pixels.max_value(image.dtype)
    oh, ow = padded.shape[:2]
    if p.prompted is not None:  # a denoising model paints it from a prompt
        from studio.engine.tasks.outpaint_prompted import extend_with_prompt

        original = Rect(p.left, p.top, w, h)
        out, info = yield from extend_with_prompt(p, padded, mask, original, ctx)
        return Result(out, Rect(0, 0, ow, oh), info | {"offset": (p.left, p.top)})
    # the feather reaches into the original only near the seam; deeper pixels stay identical
    alpha = grow_and_feather(mask, 0, p.feather)
    if p.method in LEARNED_FILLS:  # the whole picture at once: texture copied from all of it
        network = yield from _single_pass_network(ctx)
        out = yield from fill_regions(
            padded,
            alpha,
            texture_outpaint_filler(network, p.seed),
            padding=max(oh, ow),
            max_side=0,  # the filler works at its own scales
            match_color=False,
            ctx=ctx,
            stage="extending",
        )
        return Result(out, Rect(0, 0, ow, oh), {"method": p.method, "offset": (p.left, p.top)})
    filler, max_side = yield from _filler_for(p, ctx)
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


# -- the tasks' rows -----------------------------------------------------------------------------
#: chosen by the mask (studio/engine/inpaint_choice.py): studio-inpaint on thin strokes and
#: blemishes (+1.5 dB over Telea in the hole), the hybrid's copied texture on object-sized holes
DEFAULT_METHOD = AUTO
_METHOD_HELP = "inpaint model id (studio models list) or a LaMa/MAT weight file"
_SIDES = ("left", "right", "top", "bottom")


def _check_method(method: str) -> None:
    if not is_weight_path(method):
        get_model(method, TaskKind.INPAINT)  # fail on a bad name before any work


def _inpaint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input")
    parser.add_argument("mask", help="white (or opaque) = fill; same size as the image")
    parser.add_argument("output")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=_METHOD_HELP)
    parser.add_argument(
        "--grow", type=int, default=0, help="grow (or shrink, negative) the mask, px"
    )
    parser.add_argument("--feather", type=int, default=0, help="soft edge outside the mask, px")
    parser.add_argument("--padding", type=int, default=64, help="context around each region, px")
    parser.add_argument("--seed", type=int, default=0)


def _inpaint_job(ns: argparse.Namespace, read: CliReader) -> CliJob:
    _check_method(ns.method)
    params = InpaintParams(
        method=ns.method, grow=ns.grow, feather=ns.feather, padding=ns.padding, seed=ns.seed
    )
    return CliJob(params, image=ns.input, mask=ns.mask)


def _outpaint_arguments(parser: argparse.ArgumentParser) -> None:
    from studio.models.samplers import DEFAULT_SAMPLER, sampler_names

    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=_METHOD_HELP)
    prompted = parser.add_argument_group("from a prompt (a Stable Diffusion model)")
    prompted.add_argument("--model", default=None, help="Stable Diffusion file or folder")
    prompted.add_argument("--prompt", default="", help="what the new area shows")
    prompted.add_argument("--negative", default="", help="what to keep out of it")
    prompted.add_argument("--steps", type=int, default=20, help="denoising steps")
    prompted.add_argument("--guidance", type=float, default=5.0, help="how closely to follow")
    prompted.add_argument("--sampler", default=DEFAULT_SAMPLER, help=", ".join(sampler_names()))
    for side in _SIDES:
        parser.add_argument(f"--{side}", type=int, default=0, help=f"pixels to add on the {side}")
    parser.add_argument(
        "--aspect", default=None, help="extend evenly to this aspect ratio instead, e.g. 16:9"
    )
    parser.add_argument("--feather", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)


def _outpaint_job(ns: argparse.Namespace, read: CliReader) -> CliJob:
    prompted = None
    if ns.model is not None:
        if ns.method != DEFAULT_METHOD:
            raise BadInputError("give --method (a fill model) or --model (from a prompt), not both")
        prompted = PromptedFill(ns.model, ns.prompt, ns.negative, ns.steps, ns.guidance, ns.sampler)
    elif ns.prompt or ns.negative:
        raise BadInputError("--prompt needs --model: a Stable Diffusion file or folder")
    method = ns.method
    if prompted is None:
        _check_method(method)
    margins = {side: getattr(ns, side) for side in _SIDES}
    if ns.aspect is not None:
        if any(margins.values()):
            raise BadInputError("give either --aspect or the sides to extend, not both")
        w, h = read.size(ns.input)  # from the header, without decoding the pixels yet
        margins = margins_for_aspect(w, h, parse_aspect(ns.aspect))
        if not any(margins.values()):
            raise BadInputError(f"the image ({w}x{h}) already has the aspect ratio {ns.aspect}")
    params = OutpaintParams(
        method=method, feather=ns.feather, seed=ns.seed, prompted=prompted, **margins
    )
    return CliJob(params, image=ns.input)


INPAINT_TASK = TaskDef(
    kind=TaskKind.INPAINT,
    title="Inpaint",
    params=InpaintParams,
    run=run_inpaint,
    models=TaskKind.INPAINT,
    cli=TaskCli("fill the masked area of an image", _inpaint_arguments, _inpaint_job),
)

OUTPAINT_TASK = TaskDef(
    kind=TaskKind.OUTPAINT,
    title="Outpaint",
    params=OutpaintParams,
    run=run_outpaint,
    models=TaskKind.INPAINT,
    land=land_grown,
    cli=TaskCli("extend the canvas and fill the new area", _outpaint_arguments, _outpaint_job),
    replaces_document=True,
    grows_canvas=True,
)
