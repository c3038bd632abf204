"""Running a batch from the editor: the batch's own thread, what the dialog asks of the batch
core (plan a folder, run the plan), planning off the GUI thread, and the dialog's texts.

A batch runs on a :class:`BatchThread` of its own, never on the engine's thread: that one
thread runs the artist's edits one at a time, and a folder of a hundred files would queue every
brush-stroke inpaint behind it. The batch thread only drives an executor
(:mod:`studio.engine.batch.contract`); with the local worker-process executor the models run in
other processes, so neither the GUI nor the engine thread competes with them for the GIL.

Cancel stops between files: the thread hands the executor its items one at a time through a
generator that ends once cancel is pressed, and stops reading outcomes after the one that
arrives next; files already written were written atomically, and the manifest (written by the
core, one record per finished file) lets the next Start resume where this one stopped.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from studio.engine.batch.contract import BatchItem, BatchSpec, ItemOutcome
from studio.engine.batch.estimate import format_seconds
from studio.errors import StudioError, os_error_message

#: every batch thread started, so tests can fail when one is left running
LIVE_BATCH_THREADS: weakref.WeakSet[BatchThread] = weakref.WeakSet()


@dataclass(frozen=True)
class BatchFolders:
    """Where a batch reads and writes. ``masks``: a folder of masks named like the inputs
    (inpaint); ``mask``: one mask for every input (inpaint); ``prompts``: a prompt-list file
    (generate, which reads no input folder)."""

    in_dir: str = ""
    out_dir: str = ""
    masks: str | None = None
    mask: str | None = None
    prompts: str | None = None


@dataclass(frozen=True)
class BatchPlan:
    """What Start would run (the dry-run numbers): ``items`` still to do, ``done`` files the
    manifest already holds with these options, ``redo`` of the items that a previous run
    failed or ran with other options, ``estimate_s`` the time for the items (None: unknown
    until the first file is done), ``notes`` further lines (memory, workers), ``workers`` the
    worker processes it would start."""

    spec: BatchSpec
    items: tuple[BatchItem, ...]
    done: int = 0
    redo: int = 0
    estimate_s: float | None = None
    notes: tuple[str, ...] = ()
    workers: int = 1


class BatchBackend(Protocol):
    """The batch core as the dialog uses it. ``plan`` raises
    :class:`~studio.errors.StudioError` with one sentence for folders it cannot use;
    ``run`` processes the items (records each outcome in the manifest) and yields the
    outcomes as files finish; closing the iterator early stops the executor."""

    def plan(self, params: Any, folders: BatchFolders) -> BatchPlan: ...

    def run(self, plan: BatchPlan, items: Iterable[BatchItem]) -> Iterator[ItemOutcome]: ...


@dataclass
class BatchCount:
    """Count, rate and time left of a running batch (Qt-free, so tests can drive the clock).

    The rate counts the files finished in this run only: files the manifest already held
    were not processed and would make it look faster than it is."""

    total: int
    started: float = field(default_factory=time.monotonic)
    ok: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.ok + self.failed

    def add(self, outcome: ItemOutcome) -> None:
        if outcome.ok:
            self.ok += 1
        else:
            self.failed += 1

    def rate(self, now: float | None = None) -> float | None:
        """Files per second so far; None before the first file."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        return self.finished / elapsed if self.finished and elapsed > 0 else None

    def eta_s(self, now: float | None = None) -> float | None:
        rate = self.rate(now)
        return (self.total - self.finished) / rate if rate else None

    def text(self, now: float | None = None) -> str:
        """'7/12 · 0.82 files/s · 6 s left · 1 failed'."""
        parts = [f"{self.finished}/{self.total}"]
        rate = self.rate(now)
        if rate is not None:
            parts.append(f"{rate:.2f} files/s" if rate < 10 else f"{rate:.0f} files/s")
            eta = self.eta_s(now)
            if eta is not None and self.finished < self.total:
                parts.append(f"{format_seconds(eta)} left")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return " · ".join(parts)


@dataclass(frozen=True)
class BatchEnded:
    """How a batch run ended: every item ran (``cancelled`` False), cancel stopped it, or
    ``error`` (one sentence) stopped it; the counts of this run."""

    ok: int
    failed: int
    total: int
    cancelled: bool = False
    error: str | None = None


class BatchThread(QThread):
    """Drives one batch: ``outcome`` per finished file (in completion order), then ``ended``
    once. Connect both to slots of a GUI-thread object (they are delivered there)."""

    outcome = Signal(object)  # ItemOutcome
    ended = Signal(object)  # BatchEnded

    def __init__(self, backend: BatchBackend, plan: BatchPlan, parent=None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.plan = plan
        self._stop = threading.Event()
        LIVE_BATCH_THREADS.add(self)

    def cancel(self) -> None:
        """Stop between files: no new file starts; the one(s) running finish or are dropped."""
        self._stop.set()

    @property
    def cancelling(self) -> bool:
        return self._stop.is_set()

    def _feed(self) -> Iterator[BatchItem]:
        for item in self.plan.items:
            if self._stop.is_set():
                return
            yield item

    def run(self) -> None:
        ok = failed = 0
        error = None
        outcomes: Iterator[ItemOutcome] | None = None
        try:
            outcomes = self.backend.run(self.plan, self._feed())
            for outcome in outcomes:
                if outcome.ok:
                    ok += 1
                else:
                    failed += 1
                self.outcome.emit(outcome)
                if self._stop.is_set():
                    break
        except Exception as exc:  # the batch as a whole failed (model missing, disk full)
            error = first_line(exc)
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                try:
                    close()  # a generator's cleanup stops the executor's workers
                except Exception as exc:
                    error = error or first_line(exc)
        total = len(self.plan.items)
        cancelled = self._stop.is_set() and ok + failed < total
        self.ended.emit(BatchEnded(ok, failed, total, cancelled, error))


def first_line(exc: BaseException) -> str:
    """An exception as one line for the dialog (some carry paragraphs)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def describe_params(params: Any) -> str:
    """The settings in one line: 'model realesrgan-x4plus · scale 4 · tile 512': the first
    three fields (the model, method or style and what matters most) and every other field the
    panel set away from its default."""
    if not dataclasses.is_dataclass(params):
        return str(params)
    parts = []
    for i, f in enumerate(dataclasses.fields(params)):
        value = getattr(params, f.name)
        if value is None or (isinstance(value, (str, tuple)) and not value):
            continue
        if i >= 3 and not isinstance(value, np.ndarray) and value == _default(f):
            continue
        if isinstance(value, np.ndarray):
            value = f"picture {value.shape[1]}×{value.shape[0]}"
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{f.name.replace('_', ' ')} {value}")
    return " · ".join(parts)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


class PlanDelivery(QObject):
    """Carries a plan from its thread to the dialog (a queued signal; no parent, so a plan
    that arrives after the dialog has gone is dropped without touching a deleted object)."""

    done = Signal(int, object, object)  # generation, plan or None, problem or None


def plan_in_background(
    delivery: PlanDelivery, generation: int, backend: BatchBackend, params, folders
) -> None:
    plan, problem = None, None
    try:
        plan = backend.plan(params, folders)
    except StudioError as exc:
        problem = str(exc)
    except OSError as exc:
        problem = os_error_message(exc)
    except Exception as exc:  # a bug in planning must not pass silently in a thread
        problem = f"Cannot plan the batch: {type(exc).__name__}: {exc}"
    delivery.done.emit(generation, plan, problem)


def plan_text(plan: BatchPlan | None) -> str:
    """'12 files to do, 1 of them again (failed or changed before) · 3 already done · about
    2 min 10 s'."""
    if plan is None:
        return ""
    n = len(plan.items)
    parts = [f"{n} file{'s' if n != 1 else ''} to do"]
    if plan.redo:
        parts[0] += f", {plan.redo} of them again (failed or changed before)"
    if plan.done:
        parts.append(f"{plan.done} already done")
    if n and plan.estimate_s is not None:
        seconds = format_seconds(plan.estimate_s)
        parts.append(seconds if seconds.startswith("under") else f"about {seconds}")
    text = " · ".join(parts)
    if n == 0 and plan.done:
        text += ": every file is done"
    return "\n".join((text, *plan.notes))
