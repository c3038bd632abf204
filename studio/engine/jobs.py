"""Job requests (frozen values) with one small parameter class per task, and the cancel token."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import numpy as np

from studio.errors import JobCancelled
from studio.geometry import Rect

_job_ids = itertools.count(1)


def next_job_id() -> int:
    return next(_job_ids)


@dataclass(frozen=True)
class UpscaleParams:
    """``scale`` may be fractional; ``target_width`` (if set) wins over ``scale``.

    ``tile`` is the input tile side in pixels: None chooses from the memory budget, 0 means
    no tiling.
    """

    model: str = "lanczos"
    scale: float = 2.0
    target_width: int | None = None
    tile: int | None = None

    task = "upscale"


@dataclass(frozen=True)
class InpaintParams:
    """Fill the masked area. ``method`` is a model id (see the registry) or a weight-file path.

    ``grow`` dilates (or, negative, erodes) the mask; ``feather`` blends the fill into its
    surroundings over that many pixels outside the grown mask; ``padding`` is the minimum context
    (px) around each region; ``max_side`` (0 = the method's own default) caps the working size
    of a region before it is downscaled.
    """

    method: str = "telea"
    grow: int = 0
    feather: int = 0
    padding: int = 64
    max_side: int = 0
    color_match: bool = True
    seed: int = 0

    task = "inpaint"


@dataclass(frozen=True)
class OutpaintParams:
    """Extend the canvas by the given pixels on each side and fill the new area."""

    method: str = "patchmatch"
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    feather: int = 8
    seed: int = 0

    task = "outpaint"


IMAGE_STYLE = "image"


@dataclass(frozen=True)
class StylizeParams:
    """``style``: a built-in style id, a painting preset id, or ``"image"`` (``style_image``).
    ``mix``: (style id, weight) pairs blended inside the network (overrides ``style``).
    ``resolution``: long side processed (0 = the image's own); ``tile``: None = only when
    needed, 0 = never, N = tile side. ``feather``: soft mask edge in px.
    """

    style: str = "starry-night"
    mix: tuple[tuple[str, float], ...] = ()
    style_image: np.ndarray | None = field(default=None, compare=False, repr=False)
    strength: float = 1.0
    preserve_colors: bool = False
    resolution: int = 1024
    tile: int | None = None
    feather: int = 8

    task = "stylize"


TaskParams = UpscaleParams | InpaintParams | OutpaintParams | StylizeParams


@dataclass(frozen=True)
class JobRequest:
    """Everything a task needs, copied out of the document when the job was requested.

    ``image`` is RGB(A) HxWxC uint8 or uint16; ``mask`` float32 HxW in [0, 1] (1 = edit).
    ``supersede_key``: a newer request with the same key replaces this one.
    ``doc_revision``: the document revision the inputs were taken from.
    """

    params: TaskParams
    image: np.ndarray
    mask: np.ndarray | None = None
    roi: Rect | None = None
    job_id: int = field(default_factory=next_job_id)
    supersede_key: str | None = None
    doc_revision: int = 0

    @property
    def task(self) -> str:
        return self.params.task


class CancelToken:
    """Thread-safe flag a task checks between tiles and steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` when cancelled."""
        if self._event.is_set():
            raise JobCancelled()
