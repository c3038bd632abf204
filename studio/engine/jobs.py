"""Job requests (frozen values) with one small parameter class per task, and the cancel token."""

from __future__ import annotations

import itertools
import numbers
import threading
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from studio.errors import BadInputError, Cancelled
from studio.geometry import Rect
from studio.models.samplers import DEFAULT_SAMPLER, check_sampler
from studio.task_kind import TaskKind

_job_ids = itertools.count(1)

#: valid ranges of the numeric parameters, shared by the CLI, the panels and the engine
MIN_SCALE, MAX_SCALE = 0.01, 16.0
MAX_WIDTH = 65536
TILE_RANGE = (16, 16384)  # 0 = no tiling; smaller tiles only multiply the overlap work
SEED_RANGE = (0, 2**32 - 1)
GROW_RANGE = (-256, 256)
FEATHER_RANGE = (0, 256)
PADDING_RANGE = (0, 1024)
MAX_SIDE_RANGE = (64, 8192)  # 0 = the method's own default
MAX_OUTPAINT = 4096
RESOLUTION_RANGE = (64, 16384)  # 0 = the image's own size
STEPS_RANGE = (1, 200)  # denoising steps
GUIDANCE_RANGE = (0.0, 30.0)  # classifier-free guidance; <= 1 switches it off
LORA_WEIGHT_RANGE = (-4.0, 4.0)
DIFFUSION_SIZE_RANGE = (32, 2048)  # 0 = the model's own size


def check_range(
    name: str, value: float, lo: float, hi: float, unit: str = "", zero: str | None = None
) -> None:
    """Raise :class:`BadInputError` naming ``name`` and its range unless lo <= value <= hi
    (or value is 0 when ``zero`` says what 0 means). NaN and infinities always fail."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and ((zero is not None and value == 0) or lo <= value <= hi):
        return
    allowed = f"between {_number(lo)} and {_number(hi)}{unit}"
    if zero is not None:
        allowed = f"0 ({zero}) or {allowed}"
    raise BadInputError(f"{name} must be {allowed}, got {value}")


def _number(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def check_tile(tile: int | None) -> None:
    """None (automatic), 0 (no tiling) or a side in :data:`TILE_RANGE`."""
    if tile is not None:
        check_range("tile", tile, *TILE_RANGE, " px", zero="no tiling")


def next_job_id() -> int:
    return next(_job_ids)


@dataclass(frozen=True)
class UpscaleParams:
    """``scale`` may be fractional; None means the model's own scale (2 for classical
    resampling); ``target_width`` (if set) wins over ``scale``.

    ``tile`` is the input tile side in pixels: None chooses from the memory budget, 0 means
    no tiling.
    """

    model: str = "lanczos"
    scale: float | None = 2.0
    target_width: int | None = None
    tile: int | None = None

    task: ClassVar[TaskKind] = TaskKind.UPSCALE

    def __post_init__(self) -> None:
        if self.scale is not None:
            check_range("scale", self.scale, MIN_SCALE, MAX_SCALE)
        if self.target_width is not None:
            check_range("width", self.target_width, 1, MAX_WIDTH, " px")
        check_tile(self.tile)


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

    task: ClassVar[TaskKind] = TaskKind.INPAINT

    def __post_init__(self) -> None:
        check_range("grow", self.grow, *GROW_RANGE, " px")
        check_range("feather", self.feather, *FEATHER_RANGE, " px")
        check_range("padding", self.padding, *PADDING_RANGE, " px")
        check_range("max side", self.max_side, *MAX_SIDE_RANGE, " px", zero="automatic")
        check_range("seed", self.seed, *SEED_RANGE)


@dataclass(frozen=True)
class PromptedFill:
    """Fill with a denoising model from a prompt (outpaint): ``model`` a Stable Diffusion file
    or folder (or another denoising model of the generate task), and the run's prompt,
    negative prompt, steps, guidance and sampler (:mod:`studio.models.samplers`)."""

    model: str
    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    guidance: float = 5.0
    sampler: str = DEFAULT_SAMPLER

    def __post_init__(self) -> None:
        if not self.model:
            raise BadInputError("a prompted fill needs a model (a Stable Diffusion file)")
        check_range("steps", self.steps, *STEPS_RANGE)
        check_range("guidance", self.guidance, *GUIDANCE_RANGE)
        check_sampler(self.sampler)


@dataclass(frozen=True)
class OutpaintParams:
    """Extend the canvas by the given pixels on each side and fill the new area: with
    ``method`` (an inpaint model id or weight file), or, with ``prompted``, by a denoising
    model from a prompt (``method`` is then unused; ``seed`` seeds the model's noise)."""

    method: str = "patchmatch"
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    feather: int = 8
    seed: int = 0
    prompted: PromptedFill | None = None

    task: ClassVar[TaskKind] = TaskKind.OUTPAINT

    def __post_init__(self) -> None:
        for side in ("left", "right", "top", "bottom"):
            check_range(side, getattr(self, side), 0, MAX_OUTPAINT, " px")
        check_range("feather", self.feather, *FEATHER_RANGE, " px")
        check_range("seed", self.seed, *SEED_RANGE)

    def unlabelled_fields(self) -> tuple[str, ...]:
        """Fields that did not shape this result (left out of its provenance)."""
        return ("method",) if self.prompted is not None else ("prompted",)


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

    task: ClassVar[TaskKind] = TaskKind.STYLIZE

    def __post_init__(self) -> None:
        for name, weight in self.mix:
            check_range(f"the weight of style '{name}'", weight, 0, 1)
        check_range("strength", self.strength, 0, 1)
        check_range("resolution", self.resolution, *RESOLUTION_RANGE, " px", zero="full size")
        check_tile(self.tile)
        check_range("feather", self.feather, *FEATHER_RANGE, " px")


class TaskParams(Protocol):
    """Any task's parameter class: a small frozen dataclass naming the task it is for."""

    task: ClassVar[TaskKind]


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
    def task(self) -> TaskKind:
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
        """Raise :class:`~studio.errors.Cancelled` when cancelled."""
        if self._event.is_set():
            raise Cancelled()
