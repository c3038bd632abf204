"""Plans and estimates the UI may show before a job runs (Qt-free, no device probing).

The upscale plan (output size, passes, tile size, memory and time) is computed from the model's
spec, the image size and the memory budget the engine published (:mod:`studio.engine.report`);
the upscale task uses the same functions, so the panel's estimate is the job's own plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from studio.engine.jobs import UpscaleParams
from studio.engine.tiling import tile_for_budget
from studio.errors import BadInputError
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


def check_plan_fits(plan: UpscalePlan, budget_bytes: int) -> None:
    """Refuse a plan whose working memory is more than twice the device's budget."""
    if plan.memory_bytes > budget_bytes * 2:
        raise BadInputError(
            f"this upscale needs {plan.summary()}; that does not fit in this "
            "machine's memory — choose a smaller scale or tile size"
        )
