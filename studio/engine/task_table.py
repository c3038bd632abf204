"""The one table of tasks: each task declared once, read by the runner, the CLI, the controller
and the panels (none of which spells a task's name).

A row (:class:`TaskDef`) says what a task is: its kind, its parameter class, the generator
that runs it, the models it may load, how a finished result lands in a document, and how the
command line describes it. Built-in rows are declared next to their generators (in
``studio/engine/tasks/<task>.py``) and imported on first use, because those modules pull in
torch and ``studio --version`` or ``studio models list`` should not wait for it. Adding a task
is one module plus one line in :data:`_BUILT_IN`. Tests add their own with :func:`register`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from studio.document.landing import LandFn, land_region
from studio.task_kind import TaskKind

if TYPE_CHECKING:
    from studio.engine.events import Result, TaskEvent
    from studio.engine.jobs import JobRequest
    from studio.engine.tasks.context import TaskContext
    from studio.models.spec import ModelSpec

    TaskFn = Callable[[JobRequest, TaskContext], Generator[TaskEvent, None, Result]]


class CliReader(Protocol):
    """What a command may read while it builds its job (the CLI supplies it)."""

    def size(self, path: str) -> tuple[int, int]:
        """(width, height) of an image, from its header only."""

    def picture(self, path: str) -> np.ndarray:
        """The decoded pixels of an extra picture (a style image, a variations source)."""


@dataclass(frozen=True)
class CliJob:
    """What one headless command does: the inputs it reads, its params, how the result is
    written (to the command's ``output`` argument, which every task's command has).

    ``image``: the input image file (checked against the memory budget from its header, then
    decoded, and kept under the result when the output is a project); None when the task reads
    no input file, and then ``pixels`` is what the job gets and the result is written as a
    whole new image. ``mask``: a mask file sized to the image. ``engine``: overrides of the
    engine configuration (``--compile``, ``--precision``). ``report_size``: say the written
    size on stderr.
    """

    params: Any
    image: str | None = None
    mask: str | None = None
    pixels: np.ndarray | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    report_size: bool = False


@dataclass(frozen=True)
class TaskCli:
    """A task's subcommand: its help line, its arguments (positional ``output`` among them;
    the CLI adds ``--quiet`` and ``--no-metadata``) and how they become a job.

    ``report``: for a task whose result is not an image to write (describe), the command has
    no ``output`` and prints the result's ``info`` with this instead."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace, CliReader], CliJob]
    report: Callable[[dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class TaskDef:
    """One task. ``models``: the registry family its models come from, or a function listing
    the specs it may load. ``land``: applies a finished result to a document (one undo step).

    Flags read by the editor: ``replaces_document`` (the result is the new picture at a new
    size, so "new layer / merge" does not apply), ``grows_canvas`` (the result extends the
    picture by the params' ``left/top/right/bottom`` margins), ``natural_size`` (a new
    picture shown at its own size, not over the document).
    """

    kind: TaskKind
    title: str
    params: type
    run: TaskFn
    models: TaskKind | Callable[[], Sequence[ModelSpec]] | None = None
    land: LandFn = land_region
    cli: TaskCli | None = None
    replaces_document: bool = False
    grows_canvas: bool = False
    natural_size: bool = False

    def model_specs(self) -> list[ModelSpec]:
        """The registry specs this task may load."""
        from studio.models.registry import all_models

        if self.models is None:
            return []
        if isinstance(self.models, str):  # a family
            return all_models(self.models)
        return list(self.models())


#: where each built-in task's row is declared: (module, name of its TaskDef)
_BUILT_IN: dict[TaskKind, tuple[str, str]] = {
    TaskKind.UPSCALE: ("studio.engine.tasks.upscale", "UPSCALE_TASK"),
    TaskKind.INPAINT: ("studio.engine.tasks.inpaint", "INPAINT_TASK"),
    TaskKind.OUTPAINT: ("studio.engine.tasks.inpaint", "OUTPAINT_TASK"),
    TaskKind.STYLIZE: ("studio.engine.tasks.stylize", "STYLIZE_TASK"),
    TaskKind.GENERATE: ("studio.engine.tasks.generate", "GENERATE_TASK"),
    TaskKind.DESCRIBE: ("studio.engine.tasks.describe", "DESCRIBE_TASK"),
}

#: the rows loaded or registered so far, by kind
TASKS: dict[TaskKind, TaskDef] = {}


def register(defn: TaskDef) -> TaskDef:
    """Add (or replace) a task's row; returns it."""
    if not isinstance(defn.params, type):
        raise TypeError(f"{defn.kind}: params must be the parameter class")
    if getattr(defn.params, "task", None) != defn.kind:
        raise ValueError(f"{defn.params.__name__}.task must be {defn.kind!r}")
    TASKS[defn.kind] = defn
    return defn


def unregister(kind: TaskKind) -> None:
    """Remove a row added with :func:`register` (tests clean up with it)."""
    TASKS.pop(kind, None)


def find(kind: TaskKind | str) -> TaskDef | None:
    """The row of ``kind``, loading a built-in one on first use; None for an unknown kind."""
    if kind not in TASKS and kind in _BUILT_IN:
        module, name = _BUILT_IN[TaskKind(kind)]
        register(getattr(importlib.import_module(module), name))
    return TASKS.get(kind)


def get(kind: TaskKind | str) -> TaskDef:
    """The row of ``kind``; KeyError naming the known kinds otherwise."""
    defn = find(kind)
    if defn is None:
        raise KeyError(f"unknown task '{kind}' (known: {', '.join(kind_names())})")
    return defn


def kind_names() -> list[str]:
    """Every task's name, built-in first, without importing any task module."""
    return [*map(str, _BUILT_IN), *(str(k) for k in TASKS if k not in _BUILT_IN)]


def all_tasks() -> list[TaskDef]:
    """Every row, built-in first (this imports the task modules)."""
    return [get(kind) for kind in kind_names()]
