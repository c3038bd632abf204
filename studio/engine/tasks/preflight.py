"""Will a job fit in memory? Answered from the image's size alone, before a pixel is decoded.

The CLI asks with the file's header (a 16384x16384 PNG can be a few hundred kilobytes on disk
and 1 GiB once decoded); the tasks ask again with the decoded size before they allocate. The
estimates are deliberately rough upper bounds of what a task holds at its peak, per pixel of the
image; a job is refused only when that cannot fit in the memory free right now.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from studio.engine.jobs import InpaintParams, OutpaintParams, StylizeParams, UpscaleParams
from studio.errors import BadInputError
from studio.task_kind import TaskKind

#: peak bytes per image pixel besides the image itself (float32 copies, masks, blend weights)
INPAINT_BYTES_PER_PX = 24  # float mask and blend weight, the mask file's float conversions
OUTPAINT_BYTES_PER_PX = 16  # on the extended canvas: mask, weight, pending map, copy
STYLIZE_BYTES_PER_PX = 96  # float original, styled, clipped and blended copies, temporaries


@dataclass(frozen=True)
class ImageSize:
    """What a memory estimate needs to know about the input image."""

    width: int
    height: int
    channels: int = 3
    itemsize: int = 1

    @property
    def pixel_bytes(self) -> int:
        return self.width * self.height * self.channels * self.itemsize


def image_size(image: np.ndarray) -> ImageSize:
    """The :class:`ImageSize` of a decoded HxWxC array."""
    h, w = image.shape[:2]
    return ImageSize(w, h, image.shape[2] if image.ndim == 3 else 1, image.dtype.itemsize)


def available_memory() -> int:
    """Bytes of RAM free for a new job now (Linux: MemAvailable; elsewhere: free pages)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def job_bytes(params: object, size: ImageSize, budget: int) -> int:
    """Rough peak bytes of a job on an image of ``size`` (not counting the image itself)."""
    px = size.width * size.height
    if isinstance(params, UpscaleParams):
        return upscale_plan(params, size, budget).memory_bytes
    if isinstance(params, InpaintParams):
        return size.pixel_bytes + px * INPAINT_BYTES_PER_PX
    if isinstance(params, OutpaintParams):
        w = size.width + params.left + params.right
        h = size.height + params.top + params.bottom
        return w * h * (2 * size.channels * size.itemsize + OUTPAINT_BYTES_PER_PX)
    if isinstance(params, StylizeParams):
        from studio.engine.tasks.stylize import BYTES_PER_PX

        side = max(size.width, size.height)
        work = (
            px
            if params.resolution <= 0 or side <= params.resolution
            else (px * (params.resolution / side) ** 2)
        )
        network = min(int(work * BYTES_PER_PX), budget)
        return size.pixel_bytes + px * STYLIZE_BYTES_PER_PX + network
    return 0


def check_fits(
    params: object,
    size: ImageSize,
    budget: int,
    decoding: bool = False,
    available: int | None = None,
) -> None:
    """Refuse a job that cannot fit, with one sentence saying what it would need.

    ``decoding``: the image is still to be read (its decoded pixels count too, twice: the
    decoder's own buffer and the array). Upscales also keep their own rule (see
    :func:`studio.engine.planning.check_plan_fits`).
    """
    if isinstance(params, UpscaleParams):
        from studio.engine.planning import check_plan_fits

        check_plan_fits(upscale_plan(params, size, budget), budget)
    need = job_bytes(params, size, budget) + (2 * size.pixel_bytes if decoding else 0)
    free = available_memory() if available is None else available
    if need > free:
        task = getattr(params, "task", "this job")
        raise BadInputError(
            f"{task} of a {size.width}x{size.height} image needs about {_gib(need)} of memory "
            f"but {_gib(free)} is free; use a smaller image or close other programs"
        )


def upscale_plan(params: UpscaleParams, size: ImageSize, budget: int):
    """The engine's plan (output size, passes, tiles, memory, seconds) for one upscale."""
    from studio.engine.tasks.context import is_weight_path
    from studio.engine.tasks.upscale import plan_upscale, user_weights_spec
    from studio.models.registry import get_model

    if is_weight_path(params.model):
        spec = user_weights_spec(params.model, scale=round(params.scale or 1) or 1)
    else:
        spec = get_model(params.model, TaskKind.UPSCALE)
    return plan_upscale(spec, size.width, size.height, params, budget, size.channels, size.itemsize)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{max(1, n // 2**20)} MiB"
