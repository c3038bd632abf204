"""Upscale: any scale, any model, tiled and streamed, alpha and 16-bit kept.

A model runs at its native scale (repeated when the request is larger), then a final Lanczos
resize reaches a non-native factor or a target width. Alpha is enlarged separately with Lanczos.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path

import numpy as np

from studio import pixels
from studio.document.landing import land_resized
from studio.engine.events import Partial, Progress, Result, TaskEvent
from studio.engine.jobs import JobRequest, UpscaleParams
from studio.engine.planning import check_plan_fits, plan_upscale
from studio.engine.task_table import CliJob, CliReader, TaskCli, TaskDef
from studio.engine.tasks.context import TaskContext, is_weight_path
from studio.engine.tasks.tuned import model_key
from studio.engine.tiling import plan_tiles, run_tiled
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models import classical
from studio.models.registry import get_model
from studio.models.spec import ModelSpec
from studio.task_kind import TaskKind


def user_weights_spec(
    path: str, scale: int, arch: str = "user", supports_half: bool = False
) -> ModelSpec:
    """A spec for an artist's own weight file (costs assumed as large as Real-ESRGAN's)."""
    return ModelSpec(
        id="user-weights",
        name=Path(path).name,
        task=TaskKind.UPSCALE,
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


def run_upscale(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    params: UpscaleParams = request.params
    model = None
    if is_weight_path(params.model):
        model = yield from ctx.load_user_model(params.model)
        spec = _user_spec(params.model, model)
    else:
        spec = get_model(params.model, TaskKind.UPSCALE)
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
        key = tuning_model_key(spec, params.model)
        model = yield from ctx.tuned(model, key, sample, len(tiles))
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


def tuning_model_key(spec: ModelSpec, name: str) -> str:
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


# -- the task's row ------------------------------------------------------------------------------
def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument(
        "--model",
        default="lanczos",
        help="model id (see: studio models list) or a .safetensors/.pth file",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="factor, may be fractional (default: the model's own; 2 for lanczos and bicubic)",
    )
    parser.add_argument(
        "--width", type=int, default=None, help="target width in pixels (wins over --scale)"
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        help="input tile side in pixels; 0 = no tiling; default: from memory",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="always torch.compile the model (~40 s once per tile shape; by default it is "
        "measured and used only for jobs long enough to repay it)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default=None,
        help="default auto: the fastest precision measured on this machine within 0.5/255 "
        "of fp32 (remembered per model and tile shape)",
    )


def _cli_job(ns: argparse.Namespace, read: CliReader) -> CliJob:
    if not is_weight_path(ns.model):
        get_model(ns.model, TaskKind.UPSCALE)  # fail on a bad name or path before any work
    params = UpscaleParams(model=ns.model, scale=ns.scale, target_width=ns.width, tile=ns.tile)
    engine = {"compile": "on" if ns.compile else None, "precision": ns.precision}
    return CliJob(params, image=ns.input, engine=engine, report_size=True)


UPSCALE_TASK = TaskDef(
    kind=TaskKind.UPSCALE,
    title="Upscale",
    params=UpscaleParams,
    run=run_upscale,
    models=TaskKind.UPSCALE,
    land=land_resized,
    cli=TaskCli("enlarge an image", _cli_arguments, _cli_job),
    replaces_document=True,
)
