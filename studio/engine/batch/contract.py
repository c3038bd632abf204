"""The batch contract: what one file of a batch is, what processing it gives back, and how a
way of running many (one process, worker processes, a Ray cluster) is plugged in.

A batch is planned once in the parent (:class:`BatchItem` per input file or prompt), run by an
:class:`Executor` that spreads the items over workers, each holding an :class:`ItemProcessor`
built once from the picklable :class:`BatchSpec` (so the model loads once per worker), and
recorded by the parent alone in the manifest (one writer, so a kill at any moment leaves at
worst one unrecorded item, whose output was written atomically or not at all).

Rules every executor keeps:

* an item's output depends only on ``(spec, item)``: which worker ran it, in which order, with
  how many others, never changes a byte of it (so local, parallel and Ray runs are identical);
* a worker writes the output file itself, atomically (temporary file in the output folder, then
  rename), and returns an :class:`ItemOutcome`; it never raises for a bad input file, it returns
  ``ok=False`` with one line of reason and goes on;
* outcomes come back as items finish (any order); the parent records each as it arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from studio.task_kind import TaskKind


@dataclass(frozen=True)
class BatchSpec:
    """Everything a worker needs to build its processor; picklable (plain values only).

    ``params``: the task's parameter object as the task's own command line builds it (one
    value shared by every item; per-item values such as a prompt or a mask live in the item).
    ``engine``: overrides of the engine configuration (precision, threads per worker, device).
    ``options_hash``: a stable hash of the task and params; the manifest keys resumption on it,
    so changed options redo the files instead of skipping them.
    ``labels``: write the provenance labels into each output (the CLI's ``--no-metadata``
    turns them off), as the single-file command would.
    """

    task: TaskKind
    params: Any
    out_dir: str
    options_hash: str
    engine: dict[str, Any] = field(default_factory=dict)
    labels: bool = True


@dataclass(frozen=True)
class BatchItem:
    """One unit of a batch. ``key``: stable id (the input's path relative to IN_DIR, or
    ``prompt-0007`` for a prompt list). ``source``: the input file, absolute (None for
    generate). ``output``: the output file name relative to OUT_DIR. ``mask``: the mask file
    for inpaint, absolute. ``prompt`` and ``seed``: for generate."""

    key: str
    output: str
    source: str | None = None
    mask: str | None = None
    prompt: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class ItemOutcome:
    """What processing one item gave: written (``ok``) or failed with a one-line ``reason``.
    ``input_sha256`` hashes the input bytes (and the mask's, if any); ``output_sha256`` the
    written file's bytes. ``seconds``: the item's processing time in its worker."""

    key: str
    ok: bool
    output: str | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    reason: str | None = None
    seconds: float = 0.0


class ItemProcessor(Protocol):
    """Built once per worker from a :class:`BatchSpec` (the model loads then); processes one
    item at a time. Must not raise for a bad input file: return ``ok=False`` instead."""

    def __call__(self, item: BatchItem) -> ItemOutcome: ...


class Executor(Protocol):
    """A way of running a batch: yields one outcome per item, in completion order, building
    one processor per worker with ``studio.engine.batch.worker.make_processor(spec)``."""

    def run(self, spec: BatchSpec, items: Iterable[BatchItem]) -> Iterator[ItemOutcome]: ...
