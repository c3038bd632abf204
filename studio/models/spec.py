"""Model specifications: plain data describing a model, its files and its needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.task_kind import TaskKind

_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
#: the model families: the kind of task a spec's models serve (outpaint uses inpaint models)
TASKS = (
    TaskKind.UPSCALE,
    TaskKind.INPAINT,
    TaskKind.STYLIZE,
    TaskKind.GENERATE,
    TaskKind.DESCRIBE,
)


@dataclass(frozen=True)
class ModelFile:
    """A weight file under the checkpoints folder and its expected sha256 (hex)."""

    name: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model before loading it.

    ``arch`` is an architecture id from :mod:`studio.models.architectures`, or ``classical``.
    ``bytes_per_px`` is the working memory per input pixel at fp32, used to size tiles.
    ``mpx_per_s`` is a rough CPU speed (output megapixels per second) for time estimates.
    """

    id: str
    name: str
    task: TaskKind
    arch: str
    description: str = ""
    files: tuple[ModelFile, ...] = ()
    scale: int = 1
    size_multiple: int = 1
    #: longest side a method handles comfortably (inpaint regions are downscaled beyond it)
    max_side: int = 0
    tiling: bool = True
    supports_half: bool = True
    bytes_per_px: float = 4096.0
    mpx_per_s: float = 1.0
    speed_hint: str = ""
    license: str = ""
    #: inpaint: also fill the mirrored input and average (test-time augmentation)
    flip_average: bool = False

    def __post_init__(self) -> None:
        if not _KEBAB.match(self.id):
            raise ValueError(f"model id {self.id!r} is not lower-kebab-case")
        if self.task not in TASKS:
            raise ValueError(f"model {self.id}: unknown task {self.task!r}")
