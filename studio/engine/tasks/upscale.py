"""Upscale: any scale, any model, tiled and streamed, alpha and 16-bit kept.

A model runs at its native scale (repeated when the request is larger), then a final Lanczos
resize reaches a non-native factor or a target width. Alpha is enlarged separately with Lanczos.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from studio import pixels
from studio.engine.jobs import JobRequest, UpscaleParams
from studio.engine.tasks.context import TaskContext, is_weight_path
from studio.engine.tasks.events import Partial, Progress, Result, TaskEvent
from studio.engine.tasks.tuned import model_key
from studio.engine.tiling import plan_tiles, run_tiled, tile_for_budget
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models import classical
from studio.models.registry import get_model
from studio.models.spec import ModelSpec

#: largest output: 32768 x 32768 would be 4 GiB of RGBA pixels
MAX_OUTPUT_PIXELS = 1 << 30
CLASSICAL_TILE = 512
#: context pixels per tile side in memory estimates (the real pad is known once loaded)
TYPICAL_CONTEXT = 16


@dataclass(frozen=True)
class UpscalePlan:
    """What a run will produce and cost, computed before any work starts."""

    out_width: int
    out_height: int
    native_scale: int
    passes: int
    tile: int
    memory_bytes: int
    seconds: float

    def summary(self) -> str:
        mp = self.out_width * self.out_height / 1e6
        mem = self.memory_bytes
        memory = f"{mem / 2**30:.1f} GiB" if mem >= 2**30 else f"{max(1, mem // 2**20)} MiB"
        time = f"~{self.seconds:.0f} s" if self.seconds >= 1 else "under a second"
        return f"{self.out_width}x{self.out_height} ({mp:.1f} MP), about {memory}, {time}"


def output_size(
    width: int, height: int, params: UpscaleParams, default_scale: float = 2.0
) -> tuple[int, int]:
    """The result's size; ``params.scale`` None means ``default_scale``."""
    if params.target_width is not None:
        factor = params.target_width / width
        return params.target_width, max(1, round(height * factor))
    scale = params.scale if params.scale is not None else default_scale
    return max(1, round(width * scale)), max(1, round(height * scale))


def default_scale(spec: ModelSpec) -> float:
    """The factor when none is asked for: the model's own (resampling, which has none: 2)."""
    return 2.0 if spec.arch == "classical" else float(spec.scale)


def plan_upscale(
    spec: ModelSpec,
    width: int,
    height: int,
    params: UpscaleParams,
    budget_bytes: int,
    channels: int = 3,
    itemsize: int = 1,
) -> UpscalePlan:
    """Output size, passes, tile size and a memory/time estimate; refuses what cannot fit."""
    out_w, out_h = output_size(width, height, params, default_scale(spec))
    if out_w * out_h > MAX_OUTPUT_PIXELS:
        raise BadInputError(
            f"the result would be {out_w}x{out_h} ({out_w * out_h / 1e6:.0f} MP); the limit is "
            f"{MAX_OUTPUT_PIXELS / 1e6:.0f} MP — choose a smaller scale"
        )
    factor = out_w / width
    if spec.arch == "classical":
        native = round(factor) if _is_integer_scale(width, height, out_w, out_h) else 1
        passes = 1
    elif spec.scale <= 1:  # a same-size restoration model (de-JPEG, denoise): one pass
        native, passes = 1, 1
    else:
        native = spec.scale
        passes = max(1, math.ceil(math.log(max(factor, 1.0001)) / math.log(native) - 1e-9))
    if params.tile == 0:
        tile = 0
    elif params.tile is not None:
        tile = params.tile
    else:
        tile = (
            CLASSICAL_TILE
            if spec.arch == "classical"
            else tile_for_budget(
                spec.bytes_per_px, budget_bytes // 2, multiple=max(8, spec.size_multiple)
            )
        )
    memory = memory_estimate(spec, width, height, native, passes, tile, out_w, out_h, channels)
    memory += 2 * out_w * out_h * channels * itemsize  # the result and the editor's copy
    seconds = out_w * out_h / 1e6 / max(spec.mpx_per_s, 1e-6)
    return UpscalePlan(out_w, out_h, native, passes, tile, memory, seconds)


def memory_estimate(
    spec: ModelSpec,
    width: int,
    height: int,
    native: int,
    passes: int,
    tile: int,
    out_w: int,
    out_h: int,
    channels: int = 3,
) -> int:
    """Peak bytes an upscale adds besides its result: the model's working memory for the
    largest piece it runs at once, plus the float buffers alive then.

    The piece is a tile, but never more than the image: counting a whole budget-sized tile made
    a 192 -> 768 upscale "about 1014 MiB" (measured: 30-60 MiB). The model term is
    ``spec.bytes_per_px``, which also sizes tiles and is conservative for most models. Loading
    the weights is not counted (the model cache owns them). ``benchmarks/upscale_memory.py``
    compares this with the measured peak resident memory.
    """
    scale_in = native ** (passes - 1)
    pass_w, pass_h = width * scale_in, height * scale_in  # the input of the last pass
    model_px = _piece_side(pass_w, tile) * _piece_side(pass_h, tile)
    per_px = spec.bytes_per_px
    if spec.arch == "classical":  # Pillow's result, its float copy and the 8-bit image
        per_px = max(per_px, native * native * channels * 10)
    float_px = width * height + (pass_w * pass_h if passes > 1 else 0)
    native_px = pass_w * pass_h * native * native
    if native_px != out_w * out_h:  # a Lanczos resize after the model: two float images
        float_px += native_px + out_w * out_h
    return int(model_px * per_px + float_px * channels * 4)


def _piece_side(length: int, tile: int) -> int:
    """The longest piece a model sees along one side: a tile core as ``plan_tiles`` splits it
    (near-equal parts) plus typical context both sides, never more than the image."""
    if tile <= 0:
        return length
    core = math.ceil(length / math.ceil(length / tile))
    return min(length, core + 2 * TYPICAL_CONTEXT)


def _is_integer_scale(w: int, h: int, out_w: int, out_h: int) -> bool:
    return out_w % w == 0 and out_h % h == 0 and out_w // w == out_h // h


def user_weights_spec(
    path: str, scale: int, arch: str = "user", supports_half: bool = False
) -> ModelSpec:
    """A spec for an artist's own weight file (costs assumed as large as Real-ESRGAN's)."""
    return ModelSpec(
        id="user-weights",
        name=Path(path).name,
        task="upscale",
        arch=arch,
        scale=scale,
        bytes_per_px=12000.0,
        mpx_per_s=0.1,
        supports_half=supports_half,
    )


def _user_spec(path: str, model) -> ModelSpec:
    """A spec for an artist's own weight file, from what its weights say."""
    loaded = model.loaded
    if loaded.extra.get("purpose") not in (None, "SR", "Restoration"):
        raise BadInputError(
            f"{Path(path).name} is a {loaded.extra.get('purpose')} model, not an upscaler"
        )
    return user_weights_spec(path, loaded.scale, loaded.arch_id, loaded.supports_half)


def check_plan_fits(plan: UpscalePlan, budget_bytes: int) -> None:
    """Refuse a plan whose working memory is more than twice the device's budget."""
    if plan.memory_bytes > budget_bytes * 2:
        raise BadInputError(
            f"this upscale needs {plan.summary()}; that does not fit in this "
            "machine's memory — choose a smaller scale or tile size"
        )


def run_upscale(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    params: UpscaleParams = request.params
    model = None
    if is_weight_path(params.model):
        model = yield from ctx.load_user_model(params.model)
        spec = _user_spec(params.model, model)
    else:
        spec = get_model(params.model, "upscale")
    image = request.image
    pixels.check_image(image)
    h, w = image.shape[:2]
    plan = plan_upscale(
        spec, w, h, params, ctx.device_info.memory_budget, image.shape[2], image.dtype.itemsize
    )
    check_plan_fits(plan, ctx.device_info.memory_budget)
    quantize = partial(pixels.quantize, dtype=image.dtype)
    rgb = pixels.to_unit(image[:, :, :3])

    if spec.arch == "classical":
        method, exact = spec.id, image.dtype == np.uint8
        fn: Callable[[np.ndarray], np.ndarray] = lambda t: classical.scale_by(  # noqa: E731
            t, plan.native_scale, method, exact
        )
        pad = classical.SUPPORT[method] + 2
    else:
        if model is None:
            model = yield from ctx.load_model(spec)
        pad = context_pad(model.loaded.receptive_field)
        tiles = plan_tiles(w, h, plan.tile, pad, uniform=True)
        sample = rgb[tiles[0].context.slices]
        model = yield from ctx.tuned(model, _model_key(spec, params.model), sample, len(tiles))
        fn = model

    out = rgb
    for index in range(plan.passes):
        last = index == plan.passes - 1 and (out.shape[1] * plan.native_scale == plan.out_width)
        stage = "upscaling" if plan.passes == 1 else f"upscaling, pass {index + 1}/{plan.passes}"
        out = yield from run_tiled(
            out,
            fn,
            scale=plan.native_scale,
            tile=plan.tile,
            pad=pad,
            cancel=ctx.cancel,
            quantize=quantize if last else None,
            out_dtype=image.dtype if last else np.float32,
            stage=stage,
            uniform=True,
        )
    if out.shape[:2] != (plan.out_height, plan.out_width):
        yield Progress(0, 1, "resizing to the requested size")
        src = pixels.to_unit(out)
        out = quantize(classical.resize(src, plan.out_width, plan.out_height, "lanczos"))
        ctx.cancel.check()
        yield Partial(
            Rect(0, 0, plan.out_width, plan.out_height),
            out,
            (plan.out_width, plan.out_height),
            True,
        )
    if image.shape[2] == 4:
        yield Progress(0, 1, "enlarging transparency")
        alpha = pixels.to_unit(image[:, :, 3:4])
        alpha = quantize(classical.resize(alpha, plan.out_width, plan.out_height, "lanczos"))
        out = np.concatenate([out, alpha], axis=2)
        yield Partial(
            Rect(0, 0, plan.out_width, plan.out_height),
            out,
            (plan.out_width, plan.out_height),
            True,
        )
    info = {"model": spec.id, "scale": plan.out_width / w, "plan": plan.summary()}
    if spec.arch != "classical" and ctx.last_tuning is not None:
        info["variant"] = ctx.last_tuning.summary()
    return Result(out, Rect(0, 0, plan.out_width, plan.out_height), info)


def _model_key(spec: ModelSpec, name: str) -> str:
    """Names the weights a tuning result belongs to: id and hash, or the user file's identity."""
    if spec.files and spec.files[0].sha256:
        return model_key(spec)
    p = Path(name).expanduser()
    try:
        st = p.stat()
        return f"file:{p.resolve()}@{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return f"file:{p}"


def context_pad(receptive_field: int) -> int:
    """Pixels of real context each tile gets: enough for tiled == untiled within 1/255."""
    return max(8, receptive_field)
