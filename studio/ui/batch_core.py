"""The Batch dialog's way into the batch core (:mod:`studio.engine.batch`): the same plan,
manifest and executors as ``studio batch``, fed with a panel's parameters instead of options.

The editor always runs a batch in worker processes (:class:`WorkerProcessExecutor`, even with
one worker), never in its own process: a processor sets torch's process-wide thread count and
holds its own model cache, which would take cores and memory from the artist's edits, and a
crash in a model would take the editor down with it. Spawning costs a few seconds once per
batch.

The dialog's thread feeds items one at a time and may stop reading outcomes at any moment
(Cancel); so :meth:`CoreBackend.run` records outcomes with
:func:`~studio.engine.batch.run.recorded` (the parent alone writes the manifest) rather than
calling :func:`~studio.engine.batch.run.run_batch`, which takes its items as a list up front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from studio.engine.batch.contract import BatchItem, ItemOutcome
from studio.engine.config import EngineConfig
from studio.errors import BadInputError
from studio.task_kind import TaskKind
from studio.ui.batch_run import BatchFolders, BatchPlan


class CoreBackend:
    """Plans with :func:`~studio.engine.batch.plan.plan_batch` and the manifest, runs with
    worker processes. ``config``: the editor's engine settings (device, precision, compile,
    tuning file); ``workers``: a fixed worker count (None: sized from memory and cores)."""

    def __init__(
        self, config: EngineConfig | None = None, workers: int | None = None, labels: bool = True
    ) -> None:
        self.config = config or EngineConfig()
        self.workers = workers
        self.labels = labels

    def plan(self, params: Any, folders: BatchFolders) -> BatchPlan:
        from studio.engine.batch.estimate import estimate_seconds
        from studio.engine.batch.local import plan_workers
        from studio.engine.batch.manifest import Manifest
        from studio.engine.batch.plan import make_spec, plan_batch
        from studio.engine.batch.precision import resolve_engine_apart

        task = params.task
        count, seed = 1, 0
        if task == TaskKind.GENERATE:
            if getattr(params, "mode", "samples") != "samples":
                raise BadInputError(
                    "a batch of prompts makes new pictures: untick 'from the canvas' in Generate"
                )
            count, seed = params.count, params.seed
            params = dataclasses.replace(params, count=1)  # one file per image of each prompt
        else:
            _check_folders(folders)
        items = plan_batch(
            task,
            folders.in_dir or None,
            folders.out_dir,
            mask=folders.mask,
            masks_dir=folders.masks,
            prompts=folders.prompts,
            count=count,
            seed=seed,
        )
        config = dataclasses.replace(self.config, interactive=False, threads=None)
        # one precision for every worker (measured in a process of its own, not the editor's)
        choice = resolve_engine_apart(params, items, config)
        config = dataclasses.replace(config, precision=choice.precision, compile=choice.compile)
        engine = {f.name: getattr(config, f.name) for f in dataclasses.fields(EngineConfig)}
        spec = make_spec(task, params, folders.out_dir, engine, labels=self.labels)
        workers = plan_workers(spec, items, self.workers)
        spec = dataclasses.replace(spec, engine={**spec.engine, "threads": workers.threads})
        manifest = Manifest(spec.out_dir)
        split = manifest.classify(spec, items)
        n = min(workers.workers, max(len(split.to_run), 1))
        seconds = estimate_seconds(spec, split.to_run, manifest)
        return BatchPlan(
            spec,
            tuple(split.to_run),
            done=len(split.done),
            redo=len(split.redo),
            estimate_s=None if seconds is None else seconds / n,
            notes=(workers.summary(), choice.note),
            workers=n,
        )

    def run(self, plan: BatchPlan, items: Iterable[BatchItem]) -> Iterator[ItemOutcome]:
        from studio.engine.batch.local import WorkerProcessExecutor
        from studio.engine.batch.manifest import Manifest
        from studio.engine.batch.run import recorded

        spec = plan.spec
        manifest = Manifest(spec.out_dir)
        manifest.open()  # refused while another batch writes to the same folder
        try:
            manifest.remove_stale_temps(plan.items)
        except BaseException:
            manifest.close()
            raise
        executor = WorkerProcessExecutor(max(plan.workers, 1))
        yield from recorded(spec, executor.run(spec, items), manifest)


def _check_folders(folders: BatchFolders) -> None:
    if not folders.in_dir:
        raise BadInputError("choose the input folder")
    if not Path(folders.in_dir).is_dir():
        raise BadInputError(f"{folders.in_dir}: no such folder")
    if Path(folders.out_dir).resolve() == Path(folders.in_dir).resolve():
        raise BadInputError("the output folder must differ from the input folder")
    if folders.masks is not None and not Path(folders.masks).is_dir():
        raise BadInputError(f"{folders.masks}: no such folder")
    if folders.mask is not None and not Path(folders.mask).is_file():
        raise BadInputError(f"{folders.mask}: no such file")
