"""What a task yields while it runs and returns at the end: the one set of payload types.

A task generator knows nothing of job ids: it yields :class:`Progress`, :class:`Partial` and
:class:`LoadingModel` and returns a :class:`Result`. The runner stamps each with the job id
(:func:`studio.engine.messages.stamp`), and the message types of :mod:`studio.engine.messages`
*are* these types with a job id added (subclasses), so every field is declared once here.

Why stamp rather than have tasks yield messages: a task can run inside another (generate runs
the upscale task per cell) and forward its events unchanged, and tests drive tasks without
inventing job ids; the UI keeps its message names and reads the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.geometry import Rect


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units (tiles, steps, regions) of ``stage``; ``elapsed_s`` (seconds
    since the stage started) gives an ETA."""

    done: int
    total: int
    stage: str = ""
    elapsed_s: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None until a unit is done."""
        if self.elapsed_s is None or self.done <= 0:
            return None
        return self.elapsed_s / self.done * max(0, self.total - self.done)


@dataclass(frozen=True)
class Partial:
    """Output pixels for ``rect`` (in output coordinates of size ``out_size`` = (w, h)).

    ``final`` pixels will not change again; non-final ones are previews that may be thinned out.
    """

    rect: Rect
    pixels: np.ndarray
    out_size: tuple[int, int]
    final: bool = True


@dataclass(frozen=True)
class LoadingModel:
    """A model is being read from disk (a cache miss): loading may take a while."""

    model_id: str


@dataclass(frozen=True)
class Result:
    """What a task returns (``return Result(...)`` from the generator): ``image`` covers
    ``rect`` of the output (usually all of it)."""

    image: np.ndarray
    rect: Rect
    info: dict[str, Any] = field(default_factory=dict)


TaskEvent = Progress | Partial | LoadingModel
