"""Fake tasks for engine and UI tests: controllable, fast, no models."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

import numpy as np

from studio.engine.events import Partial, Progress, Result
from studio.engine.jobs import JobRequest
from studio.engine.task_table import TaskDef
from studio.engine.tasks.context import TaskContext
from studio.geometry import Rect


class FakeKind(StrEnum):
    """The tests' own tasks (registered in the task table by fixtures, not built in)."""

    FAKE = "fake"
    STAMP = "stamp"


@dataclass(frozen=True)
class FakeParams:
    """Parameters of the fake task: ``tiles`` tiles; tile i waits for gate i when gated."""

    tiles: int = 3
    fail_at: int | None = None
    gated: bool = False

    task: ClassVar[FakeKind] = FakeKind.FAKE


class Gates:
    """Lets a test release a fake task one tile at a time (no sleeps)."""

    def __init__(self) -> None:
        self.events = [threading.Event() for _ in range(64)]
        self.reached = [threading.Event() for _ in range(64)]

    def release(self, i: int) -> None:
        self.events[i].set()

    def release_all(self) -> None:
        for e in self.events:
            e.set()


def make_fake_task(gates: Gates):
    def fake_task(request: JobRequest, ctx: TaskContext):
        p: FakeParams = request.params
        h, w = request.image.shape[:2]
        yield Progress(0, p.tiles, "fake")
        for i in range(p.tiles):
            if p.gated:
                gates.reached[i].set()
                assert gates.events[i].wait(10), "test never released the gate"
            ctx.cancel.check()
            if p.fail_at == i:
                raise ValueError(f"boom at tile {i}")
            rect = Rect(0, i, w, 1)
            yield Partial(rect, np.full((1, w, 3), i, np.uint8), (w, h), True)
            yield Progress(i + 1, p.tiles, "fake", 0.01 * (i + 1))
        return Result(request.image.copy(), Rect(0, 0, w, h), {"tiles": p.tiles})

    return fake_task


def fake_task(gates: Gates) -> TaskDef:
    """The fake task's row (its result lands as a region, like inpaint's)."""
    return TaskDef(FakeKind.FAKE, "Fake", FakeParams, make_fake_task(gates))


def wait_finished(qtbot, window, timeout: int = 30000):
    """Block until ``window``'s controller has applied a JobFinished; returns the message."""
    from studio.engine.messages import JobFinished

    with qtbot.waitSignal(
        window.controller.applied,
        timeout=timeout,
        check_params_cb=lambda m: isinstance(m, JobFinished),
    ) as blocker:
        pass
    return blocker.args[0]
