"""Typed messages from the engine to whoever submitted a job. Immutable; arrays are read-only.

For every job the order is: ``JobStarted``, then any of ``ModelLoading`` / ``JobProgress`` /
``TileReady``, then exactly one of ``JobFinished``, ``JobCancelled`` or ``JobFailed``.

``ModelLoading``, ``JobProgress``, ``TileReady`` and ``JobFinished`` are the task events of
:mod:`studio.engine.events` with the job id added (:func:`stamp` makes them), so their fields
are declared once, there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.engine.events import LoadingModel, Partial, Progress, Result, TaskEvent


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
class ModelLoading(LoadingModel, Message):
    """``ModelLoading(job_id, model_id)``."""


@dataclass(frozen=True)
class JobProgress(Progress, Message):
    """``JobProgress(job_id, done, total, stage, elapsed_s)``; ``eta_s`` is None until
    measurable."""


@dataclass(frozen=True)
class TileReady(Partial, Message):
    """``TileReady(job_id, rect, pixels, out_size, final)``; see :class:`Partial`."""


@dataclass(frozen=True)
class JobFinished(Result, Message):
    """``JobFinished(job_id, image, rect, info, timings)``: the whole result."""

    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class JobCancelled(Message):
    pass


@dataclass(frozen=True)
class JobFailed(Message):
    """``kind`` is one of bad_input, missing_model, bad_weights, bad_output, oom, error."""

    message: str
    kind: str = "error"
    details: str = ""


TERMINAL = (JobFinished, JobCancelled, JobFailed)


def stamp(job_id: int, event: TaskEvent) -> Message:
    """The message for a task's event: the same fields plus ``job_id``, arrays read-only."""
    if isinstance(event, Progress):
        return JobProgress(job_id, event.done, event.total, event.stage, event.elapsed_s)
    if isinstance(event, Partial):
        return TileReady(
            job_id, event.rect, frozen_array(event.pixels), event.out_size, event.final
        )
    if isinstance(event, LoadingModel):
        return ModelLoading(job_id, event.model_id)
    raise TypeError(f"task yielded {type(event).__name__}, not a task event")


def finished(job_id: int, result: Result, timings: dict[str, float]) -> JobFinished:
    """The terminal message for a task's returned :class:`Result`."""
    return JobFinished(job_id, frozen_array(result.image), result.rect, result.info, timings)
