"""Stylize: a built-in style (or a blend), a painting preset, or any picture as the style.

The image is processed at a working resolution (its long side; the size of the brush strokes
follows it), untiled when it fits the memory budget. Larger work is tiled: one pass computes the
instance-norm statistics of the whole working image (downscaled only as far as memory demands)
and every tile is then normalised with them, so tiles meet without seams; with full-resolution
statistics the tiled result equals the untiled one. The result is enlarged back to the image
size, optionally keeps the original colours (luminance transfer in YCbCr), is mixed with the
original by ``strength``, and inside a mask only (feathered), with pixels outside bit-identical.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Generator
from pathlib import Path

import cv2
import numpy as np
import torch

from studio import pixels
from studio.engine.events import Partial, Progress, Result, TaskEvent
from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.jobs import IMAGE_STYLE, JobRequest, StylizeParams
from studio.engine.task_table import CliJob, CliReader, TaskCli, TaskDef
from studio.engine.tasks.context import TaskContext
from studio.engine.tasks.preflight import check_fits, image_size
from studio.engine.tiling import run_tiled
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models import style as style_models
from studio.models.registry import get_model
from studio.models.style_names import STYLES, style_index
from studio.task_kind import TaskKind

#: working memory per working-resolution pixel (measured peak: 280-400 MiB per megapixel)
BYTES_PER_PX = 420
CONTEXT = 64  # >= the 62 px an output pixel sees with fixed statistics, a multiple of 4


def _styler(params: StylizeParams, ctx: TaskContext) -> Generator:
    """A function (NCHW tensor, stats) -> NCHW tensor, and one that computes the stats."""
    builtin_ids = {s[1] for s in STYLES}
    if params.mix or params.style in builtin_ids:
        spec = dict(params.mix) if params.mix else {params.style: 1.0}
        try:
            weights = style_models.MultiStyleModel.style_weights(
                {style_index(name): w for name, w in spec.items()}
            )
        except KeyError as exc:
            raise BadInputError(str(exc).strip("'\"")) from None
        except ValueError as exc:
            raise BadInputError(f"style blend: {exc}") from None
        model = yield from ctx.load_registered(
            get_model(style_models.MULTISTYLE_ID, TaskKind.STYLIZE),
            lambda net: style_models.multistyle_from(net).to(ctx.device, channels_last=True),
        )
        return (
            lambda x, stats: model(x, weights, stats),
            lambda x, side: model.norm_stats(x, weights, side),
        )
    model = yield from ctx.load_registered(
        get_model(style_models.ARBITRARY_ID, TaskKind.STYLIZE),
        lambda predictor, transform: style_models.arbitrary_from(predictor, transform).to(
            ctx.device, channels_last=True
        ),
    )
    vector = _style_vector(params, model)
    return (
        lambda x, stats: model.transfer(x, vector, stats),
        lambda x, side: model.norm_stats(x, vector, side),
    )


def _style_vector(params: StylizeParams, model) -> torch.Tensor:
    if params.style == IMAGE_STYLE:
        if params.style_image is None:
            raise BadInputError("choose a picture to take the style from")
        pixels.check_image(params.style_image, "style picture")
        tensor = torch.from_numpy(pixels.to_unit(params.style_image[:, :, :3])).permute(2, 0, 1)
        return model.predict(tensor)
    try:
        from studio.models.style_presets import preset_by_id

        preset = preset_by_id(params.style)
    except (ImportError, KeyError):
        names = ", ".join(s[1] for s in STYLES)
        raise BadInputError(
            f"unknown style '{params.style}' (built-in: {names}; or a painting "
            "preset, or a picture)"
        ) from None
    return torch.tensor(preset.style_vector, dtype=torch.float32)


def run_stylize(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    p: StylizeParams = request.params
    image = request.image
    pixels.check_image(image)
    h, w = image.shape[:2]
    check_fits(p, image_size(image), ctx.device_info.memory_budget)
    if min(h, w) < style_models.MIN_SIDE:
        raise BadInputError(
            f"the image is too small to stylize (at least {style_models.MIN_SIDE} px per side)"
        )
    alpha = None
    if request.mask is not None:
        if request.mask.shape != (h, w):
            raise BadInputError("the mask and the image differ in size")
        alpha = grow_and_feather(request.mask, 0, p.feather)
        if not (alpha > 0).any():
            raise BadInputError(
                "the mask is empty: paint where the style should go, or run without a mask"
            )
    original = pixels.to_unit(image[:, :, :3])
    stylize, stats_of = yield from _styler(p, ctx)

    work = _working_copy(original, p.resolution)
    wh, ww = work.shape[:2]
    budget = ctx.device_info.memory_budget
    tile = p.tile
    if tile is None:
        tile = 0 if wh * ww * BYTES_PER_PX <= budget else _tile_side(budget)
    stats_side = _stats_side(wh, ww, budget) if tile else None
    x_full = torch.from_numpy(work).permute(2, 0, 1)
    yield Progress(0, 1, "measuring the image" if tile else "stylizing")
    stats = stats_of(x_full, stats_side) if tile else None
    ctx.cancel.check()

    def run_tile(piece: np.ndarray) -> np.ndarray:
        out = stylize(torch.from_numpy(piece).permute(2, 0, 1), stats)
        return out.float().clamp(0, 1).permute(1, 2, 0).numpy()

    styled = yield from run_tiled(
        work,
        run_tile,
        scale=1,
        tile=tile,
        pad=CONTEXT,
        cancel=ctx.cancel,
        align=4,
        stage="stylizing",
    )
    if (wh, ww) != (h, w):
        styled = cv2.resize(styled, (w, h), interpolation=cv2.INTER_LANCZOS4)
    out = finish(original, np.clip(styled, 0, 1), p.strength, p.preserve_colors, alpha)
    result = image.copy()
    result[:, :, :3] = pixels.quantize(out, image.dtype)
    if alpha is not None:  # outside the feathered mask: the input's own values, bit for bit
        result[alpha == 0] = image[alpha == 0]
    yield Partial(Rect(0, 0, w, h), result, (w, h), True)
    info = {
        "style": p.style if not p.mix else "+".join(n for n, _ in p.mix),
        "resolution": f"{ww}x{wh}",
        "tiled": bool(tile),
    }
    return Result(result, Rect(0, 0, w, h), info)


def _working_copy(image: np.ndarray, resolution: int) -> np.ndarray:
    h, w = image.shape[:2]
    if resolution <= 0 or max(h, w) <= resolution:
        return np.ascontiguousarray(image)
    s = resolution / max(h, w)
    size = (max(style_models.MIN_SIDE, round(w * s)), max(style_models.MIN_SIDE, round(h * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _tile_side(budget: int) -> int:
    side = int(math.sqrt(budget / BYTES_PER_PX)) - 2 * CONTEXT
    return max(128, min(1024, side // 4 * 4))


def _stats_side(h: int, w: int, budget: int) -> int | None:
    """Long side of the copy the statistics come from: the whole image when it fits."""
    if h * w * BYTES_PER_PX <= budget:
        return None
    return int(max(h, w) * math.sqrt(budget / (h * w * BYTES_PER_PX)))


def finish(
    original: np.ndarray,
    styled: np.ndarray,
    strength: float,
    preserve_colors: bool,
    alpha: np.ndarray | None,
) -> np.ndarray:
    """Colour preservation, strength and mask, on float RGB in [0, 1]."""
    if preserve_colors:
        styled = keep_colors(original, styled)
    out = original + np.float32(strength) * (styled - original)
    if alpha is not None:
        out = original + alpha[:, :, None] * (out - original)
    return out


def keep_colors(original: np.ndarray, styled: np.ndarray) -> np.ndarray:
    """The styled image's luminance with the original's chroma (YCrCb, BT.601)."""
    y_styled = cv2.cvtColor(styled.astype(np.float32), cv2.COLOR_RGB2YCrCb)[:, :, 0]
    ycc = cv2.cvtColor(original.astype(np.float32), cv2.COLOR_RGB2YCrCb)
    ycc[:, :, 0] = y_styled
    return np.clip(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), 0.0, 1.0)


# -- the task's row ------------------------------------------------------------------------------
#: a --style ending so is a picture to take the style from
_PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument(
        "--style",
        default="starry-night",
        help="a style id (studio models list), a painting preset, or a picture file",
    )
    parser.add_argument(
        "--mix",
        default=None,
        help="blend built-in styles, weights from 0 to 1: 'starry-night=0.7,copper=0.3'",
    )
    parser.add_argument("--strength", type=float, default=1.0, help="0 = original, 1 = full style")
    parser.add_argument("--preserve-colors", action="store_true", help="keep the original colours")
    parser.add_argument("--mask", default=None, help="only where the mask is white (or opaque)")
    parser.add_argument("--feather", type=int, default=8, help="soft mask edge, px")
    parser.add_argument(
        "--resolution",
        type=int,
        default=1024,
        help="long side processed (stroke size follows it); 0 = full size",
    )
    parser.add_argument("--tile", type=int, default=None, help="tile side; 0 = never tile")


def _cli_job(ns: argparse.Namespace, read: CliReader) -> CliJob:
    style, style_image, mix = ns.style, None, ()
    if Path(ns.style).suffix.lower() in _PICTURE_SUFFIXES:
        style, style_image = IMAGE_STYLE, read.picture(ns.style)
    if ns.mix:
        try:
            mix = tuple(
                (name.strip(), float(weight))
                for name, weight in (part.split("=") for part in ns.mix.split(","))
            )
        except ValueError:
            raise BadInputError(
                "--mix takes name=weight pairs, e.g. starry-night=0.7,copper=0.3"
            ) from None
    params = StylizeParams(
        style=style,
        mix=mix,
        style_image=style_image,
        strength=ns.strength,
        preserve_colors=ns.preserve_colors,
        resolution=ns.resolution,
        tile=ns.tile,
        feather=ns.feather,
    )
    return CliJob(params, image=ns.input, mask=ns.mask)


STYLIZE_TASK = TaskDef(
    kind=TaskKind.STYLIZE,
    title="Stylize",
    params=StylizeParams,
    run=run_stylize,
    models=TaskKind.STYLIZE,
    cli=TaskCli("repaint an image in a style", _cli_arguments, _cli_job),
)
