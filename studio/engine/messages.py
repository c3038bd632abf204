"""Typed messages from the engine to whoever submitted a job. Immutable; arrays are read-only.

For every job the order is: ``JobStarted``, then any of ``ModelLoading`` / ``JobProgress`` /
``TileReady``, then exactly one of ``JobFinished``, ``JobCancelled`` or ``JobFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.geometry import Rect


def frozen_array(array: np.ndarray) -> np.ndarray:
    """A read-only view, so a message can cross threads without anyone mutating it."""
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True)
class Message:
    job_id: int


@dataclass(frozen=True)
class JobStarted(Message):
    task: str
    description: str = ""


@dataclass(frozen=True)
class ModelLoading(Message):
    model_id: str


@dataclass(frozen=True)
class JobProgress(Message):
    """``done`` of ``total`` units (tiles, steps, regions); ``eta_s`` is None until measurable."""

    done: int
    total: int
    stage: str = ""
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total > 0 else 0.0


@dataclass(frozen=True)
class TileReady(Message):
    """Output pixels for ``rect`` (in output coordinates of size ``out_size`` = (w, h)).

    ``final`` tiles will not change again; non-final ones are previews the engine may thin out.
    """

    rect: Rect
    pixels: np.ndarray
    out_size: tuple[int, int]
    final: bool = True


@dataclass(frozen=True)
class JobFinished(Message):
    """The whole result: ``image`` covers ``rect`` of the output (usually all of it)."""

    image: np.ndarray
    rect: Rect
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobCancelled(Message):
    pass


@dataclass(frozen=True)
class JobFailed(Message):
    """``kind`` is one of bad_input, missing_model, bad_weights, oom, error."""

    message: str
    kind: str = "error"
    details: str = ""


TERMINAL = (JobFinished, JobCancelled, JobFailed)
