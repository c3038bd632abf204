"""Outpaint from a prompt: a denoising model (an artist's Stable Diffusion file) paints the new
area of an extended canvas.

The new area is the mask, grown :data:`SEAM_GROW` px into the old picture so the model repaints
the seam, and feathered ``feather`` px beyond that. It is worked in tiles of about
three quarters of the model's native side, nearest the old picture first
(:func:`~studio.engine.inpaint_regions.outpaint_tiles`); each tile's crop takes
:data:`CONTEXT_FRACTION` of the native side of context around it (the old picture and the tiles
painted before), so the crop is about the model's native size. New pixels not painted yet are
masked too (the model does not take the mirrored start as context) but only the tile's own
pixels are written. The fill is pasted back with the blend weight: pixels of the old picture
where it is 0 are copied, bit-identical.

Every step streams a preview of the tile and a :class:`Progress`; Cancel is checked before every
step and between tiles.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from studio import pixels
from studio.engine.events import Partial, TaskEvent
from studio.engine.inpaint_regions import grow_and_feather, outpaint_tiles
from studio.engine.jobs import OutpaintParams
from studio.engine.tasks.context import TaskContext
from studio.engine.tasks.denoise import denoise_steps, resize, work_size
from studio.engine.tasks.denoisers import LoadedBackend, open_backend
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models.diffusion_api import DenoiseRequest

#: the new area's mask reaches this far (px) into the old picture: the model repaints the seam
SEAM_GROW = 4
#: tiles are at most this fraction of the model's native side ...
TILE_FRACTION = 0.75
#: ... and each sees this fraction of it as context on every side (crop ~ the native size)
CONTEXT_FRACTION = 0.125
_SEEDS = 2**32


def extend_with_prompt(
    params: OutpaintParams,
    canvas: np.ndarray,
    new_area: np.ndarray,
    original: Rect,
    ctx: TaskContext,
) -> Generator[TaskEvent, None, tuple[np.ndarray, dict]]:
    """Paint ``new_area`` (HxW float32, 1 = new) of ``canvas`` (the extended image, its new
    area holding a mirrored start) from ``params.prompted``; ``original`` is where the old
    picture lies. Returns the finished canvas and what to report about the run."""
    fill = params.prompted
    if fill is None:
        raise BadInputError("outpaint with a prompt needs a model and a prompt")
    loaded = yield from open_backend(_as_generate(params), ctx)
    if loaded is None:  # open_backend refuses a GAN/VAE for a repaint first; kept as a guard
        raise BadInputError("outpaint with a prompt needs a Stable Diffusion model")
    alpha = grow_and_feather(new_area, SEAM_GROW, params.feather)
    native = max(loaded.backend.native_size)
    tiles = outpaint_tiles(alpha, original, max(16, round(native * TILE_FRACTION)))
    padding = max(8, round(native * CONTEXT_FRACTION))
    out = canvas.copy()
    pending = new_area > 0  # new pixels not painted yet: masked, never taken as context
    for index, tile in enumerate(tiles):
        ctx.cancel.check()
        stage = "extending" if len(tiles) == 1 else f"extending {index + 1}/{len(tiles)}"
        seed = (params.seed + index) % _SEEDS  # equal tiles must not repeat one noise
        yield from _paint_tile(out, alpha, pending, tile, padding, loaded, seed, params, stage, ctx)
        pending[tile.slices] = False
    info = {"model": _name(fill.model), "prompt": fill.prompt, "tiles": len(tiles)}
    if ctx.last_tuning is not None and loaded.sd_model is not None:
        info["variant"] = ctx.last_tuning.summary()
    return out, info


def _paint_tile(
    out: np.ndarray,
    alpha: np.ndarray,
    pending: np.ndarray,
    tile: Rect,
    padding: int,
    loaded: LoadedBackend,
    seed: int,
    params: OutpaintParams,
    stage: str,
    ctx: TaskContext,
) -> Generator[TaskEvent, None, None]:
    """Paint ``tile`` of ``out`` in place: its crop with context at the model's working size,
    masked where the tile's weight is above 0 or pixels are still pending; pasted with the
    weight, so pixels whose weight is 0 keep their value."""
    fill = params.prompted
    oh, ow = out.shape[:2]
    box = tile.grow(padding).intersect(Rect(0, 0, ow, oh))
    weight = np.zeros((box.h, box.w), np.float32)
    inner = tile.intersect(box).translate(-box.x, -box.y)
    weight[inner.slices] = alpha[tile.slices]
    touched = weight > 0
    if not touched.any():
        return
    crop = pixels.to_unit(out[box.slices][:, :, :3])
    hole = (touched | pending[box.slices]).astype(np.float32)
    ww, wh = work_size(loaded, box.w, box.h)
    init = pixels.quantize(resize(crop, ww, wh), np.uint8)
    small_hole = (resize(hole, ww, wh) > 0).astype(np.float32)
    wt = weight[touched][:, None]

    def paste(filled: np.ndarray) -> np.ndarray:
        """``filled`` (uint8, working size) blended into the crop inside the weight."""
        painted = pixels.to_unit(resize(filled[:, :, :3], box.w, box.h))
        target = out[box.slices].copy()
        blended = wt * painted[touched] + (1.0 - wt) * crop[touched]
        target[:, :, :3][touched] = pixels.quantize(blended, out.dtype)
        return target

    def show(preview: np.ndarray) -> Partial:
        return Partial(box, paste(preview[0]), (ow, oh), False)

    flex = {"width": ww, "height": wh} if loaded.flexible else {}
    request = DenoiseRequest(
        prompt=fill.prompt,
        negative=fill.negative_prompt,
        seed=seed,
        steps=fill.steps,
        guidance=fill.guidance,
        sampler=fill.sampler,
        init=init,
        mask=small_hole,
        strength=1.0,
        **flex,
    )
    images = yield from denoise_steps(loaded, request, ctx, show, stage)
    out[box.slices] = paste(images[0])
    yield Partial(box, out[box.slices].copy(), (ow, oh), True)


def _as_generate(params: OutpaintParams):
    """The generate task's params of the same run (a prompted inpaint of one image), through
    which the model is opened, checked against memory and put in its measured precision."""
    from studio.engine.tasks.generate import GenerateParams

    fill = params.prompted
    return GenerateParams(
        model=fill.model,
        prompt=fill.prompt,
        negative_prompt=fill.negative_prompt,
        steps=fill.steps,
        guidance=fill.guidance,
        sampler=fill.sampler,
        seed=params.seed,
        count=1,
        mode="repaint",
        strength=1.0,
    )


def _name(model: str) -> str:
    return model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
