"""``studio batch TASK IN_DIR OUT_DIR [task options]``: a task over a folder, resumable.

Every task whose command writes an image gets a batch command with the same option words as
its single-file command (read from the task's row, :mod:`studio.engine.task_table`): the
single-file positionals (input, mask, output) are replaced by IN_DIR and OUT_DIR, plus
``--mask FILE`` / ``--masks DIR`` for a task that takes a mask; a task that reads no input
picture (generate) takes ``OUT_DIR --prompts FILE`` instead. The options are turned into the
task's params once, by the task's own ``build``, exactly as the single-file command does, so a
batch output is byte-identical to ``studio TASK IN OUT`` with the same options.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from studio.errors import BadInputError

#: what a task's single-file command reads as positionals; the batch replaces them
_INPUT, _OUTPUT, _MASK = "input", "output", "mask"


class _OptionsOnly:
    """Stands in for a task's parser while its row adds its arguments: options go to the
    batch parser, positionals are only noted (the batch has its own)."""

    def __init__(self, target: Any, positionals: list[str], options: list[str]) -> None:
        self._target = target
        self.positionals = positionals
        self.options = options

    def add_argument(self, *names: str, **kwargs: Any) -> Any:
        if names and not names[0].startswith("-"):
            self.positionals.append(names[0])
            return None
        self.options.extend(names)
        return self._target.add_argument(*names, **kwargs)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _OptionsOnly:
        group = self._target.add_argument_group(*args, **kwargs)
        return _OptionsOnly(group, self.positionals, self.options)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _OptionsOnly:
        group = self._target.add_mutually_exclusive_group(**kwargs)
        return _OptionsOnly(group, self.positionals, self.options)


def batch_tasks() -> list:
    """The rows a batch can run: every task whose command writes an image."""
    from studio.engine.task_table import all_tasks

    return [t for t in all_tasks() if t.cli is not None and t.cli.report is None]


def add_batch_parser(sub: argparse._SubParsersAction, no_metadata_help: str) -> None:
    """``studio batch TASK ...``: one sub-command per task of :func:`batch_tasks`."""
    batch = sub.add_parser("batch", help="run a task over a folder of images (resumable)")
    tasks = batch.add_subparsers(dest="batch_task", required=True, metavar="TASK")
    for task in batch_tasks():
        cmd = tasks.add_parser(str(task.kind), help=f"{task.cli.help} (batch)")
        positionals: list[str] = []
        options: list[str] = []
        task.cli.add_arguments(_OptionsOnly(cmd, positionals, options))
        reads_input = _INPUT in positionals
        if reads_input:
            cmd.add_argument("in_dir", metavar="IN_DIR", help="the images to process")
        cmd.add_argument("out_dir", metavar="OUT_DIR", help="where the results go (created)")
        if not reads_input:
            cmd.add_argument(
                "--prompts",
                required=True,
                metavar="FILE",
                help="one prompt per line (# comments); --count images per prompt",
            )
        if _MASK in positionals:
            cmd.add_argument("--mask", default=None, metavar="FILE", help="one mask for all")
        if _MASK in positionals or "--mask" in options:
            cmd.add_argument(
                "--masks",
                default=None,
                metavar="DIR",
                help="a mask per image: DIR/<same name>.png (any image type)",
            )
        _add_batch_options(cmd, reads_input, no_metadata_help)
        cmd.set_defaults(batch_def=task, batch_positionals=tuple(positionals))


def _add_batch_options(
    cmd: argparse.ArgumentParser, reads_input: bool, no_metadata_help: str
) -> None:
    group = cmd.add_argument_group("batch")
    if reads_input:
        group.add_argument("--recursive", action="store_true", help="also read sub-folders")
    group.add_argument("--ext", default="png", help="output file type (default png)")
    group.add_argument(
        "--workers",
        default="auto",
        help="worker processes (default auto: from free memory and cores)",
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (a local one without ADDRESS); needs studio[cluster]",
    )
    group.add_argument(
        "--dry-run", action="store_true", help="list what would run, with estimates; run nothing"
    )
    group.add_argument("--quiet", action="store_true", help="no progress line")
    group.add_argument("--no-metadata", action="store_true", help=no_metadata_help)


def run_batch_command(ns: argparse.Namespace) -> int:
    """Plan, then dry-run or run; the exit status says whether any file failed."""
    from studio.cli import EXIT_ERROR
    from studio.engine.batch.manifest import Manifest
    from studio.engine.batch.run import ProgressLine, run_batch

    task = ns.batch_def
    items, spec, worker_plan, engine_note = _plan(task, ns)
    manifest = Manifest(spec.out_dir)
    split = manifest.classify(spec, items)
    if ns.dry_run:
        _print_dry_run(split, spec, worker_plan, manifest, engine_note)
        return 0
    executor = _executor(ns, worker_plan, len(split.to_run))
    if ns.ray is not None:  # the Ray executor shares each node's cores among its actors
        spec = dataclasses.replace(spec, engine={**spec.engine, "threads": None})
    manifest.open()
    manifest.remove_stale_temps(split.to_run)
    if not ns.quiet and split.done:
        print(f"{len(split.done)} of {len(items)} already done (manifest)", file=sys.stderr)
    progress = ProgressLine(enabled=not ns.quiet)
    summary = run_batch(spec, split.to_run, executor, manifest, progress, skipped=len(split.done))
    progress.close()
    lines = summary.lines()
    for line in lines if not ns.quiet else lines[1:]:
        print(line if line.startswith("failed") else f"studio: {line}", file=sys.stderr)
    if summary.interrupted is not None:
        return 128 + int(summary.interrupted)
    return EXIT_ERROR if summary.failed else 0


def _plan(task, ns: argparse.Namespace):
    from studio.cli import engine_config
    from studio.engine.batch.local import plan_workers
    from studio.engine.batch.plan import make_spec, plan_batch
    from studio.engine.batch.precision import resolve_engine

    positionals = ns.batch_positionals
    reads_input = _INPUT in positionals
    out_dir = Path(ns.out_dir)
    if reads_input and out_dir.resolve() == Path(ns.in_dir).resolve():
        raise BadInputError("OUT_DIR must differ from IN_DIR (the inputs would be overwritten)")
    shared_mask = getattr(ns, "mask", None)
    masks_dir = getattr(ns, "masks", None)
    if masks_dir is not None and shared_mask is not None:
        raise BadInputError("give --mask FILE (one for all) or --masks DIR, not both")
    if _MASK in positionals and shared_mask is None and masks_dir is None:
        raise BadInputError("give --mask FILE (one mask for all) or --masks DIR (one per image)")
    if masks_dir is not None and not Path(masks_dir).is_dir():
        raise BadInputError(f"{masks_dir}: no such folder")
    count = 1
    if not reads_input:
        if getattr(ns, "prompt", None) is not None:
            raise BadInputError("--prompts FILE gives the prompts; leave out --prompt")
        count = getattr(ns, "count", None) or 1
    items = plan_batch(
        task.kind,
        ns.in_dir if reads_input else None,
        out_dir,
        recursive=getattr(ns, "recursive", False),
        extension=ns.ext,
        mask=shared_mask,
        masks_dir=masks_dir,
        prompts=None if reads_input else ns.prompts,
        count=count,
        seed=getattr(ns, "seed", 0) or 0,
    )
    job = _build(task, ns, items[0], reads_input)
    if len(items) > 1 and reads_input:
        other = _build(task, ns, items[-1], reads_input)
        if _digest(other.params) != _digest(job.params):
            raise BadInputError(
                "these options work out differently for each image's size (e.g. --aspect); "
                "a batch runs one set of options"
            )
    if job.mask is not None and shared_mask is None and masks_dir is None:
        items = [dataclasses.replace(i, mask=str(Path(job.mask).resolve())) for i in items]
    if not reads_input and (job.image is not None or job.pixels.shape[:2] != (1, 1)):
        raise BadInputError("a batch of prompts cannot also read a picture (--init and the like)")
    params = job.params
    if not reads_input:  # each item brings its own: the options must not depend on line 1
        params = dataclasses.replace(params, prompt="", seed=0)
    config = engine_config(**job.engine)
    workers = None if ns.workers == "auto" else _worker_count(ns.workers)
    # one precision for every worker, whatever its thread count (and in the options hash)
    choice = resolve_engine(params, items, config)
    config = dataclasses.replace(config, precision=choice.precision, compile=choice.compile)
    engine = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    spec = make_spec(task.kind, params, out_dir, engine, labels=not ns.no_metadata)
    worker_plan = plan_workers(spec, items, workers)
    engine["threads"] = worker_plan.threads
    spec = dataclasses.replace(spec, engine=engine)
    return items, spec, worker_plan, choice.note


def _build(task, ns: argparse.Namespace, item, reads_input: bool):
    """The task's own job from the options, as its single-file command builds it."""
    from studio.cli import _CliReader

    view = argparse.Namespace(**vars(ns))
    view.output = str(Path(ns.out_dir) / item.output)
    if reads_input:
        view.input = item.source
        if _MASK in ns.batch_positionals:
            view.mask = item.mask
    else:
        view.prompt, view.count = item.prompt, 1
    return task.cli.build(view, _CliReader())


def _digest(params: object) -> str:
    from studio.engine.batch.manifest import options_hash

    return options_hash("", params)


def _worker_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise BadInputError(f"--workers must be 'auto' or a whole number from 1 (not {text!r})")
    return n


def _executor(ns: argparse.Namespace, worker_plan, pending: int):
    from studio.engine.batch.local import InProcessExecutor, WorkerProcessExecutor

    if ns.ray is not None:
        from studio.engine.batch.ray_pool import RayExecutor, import_ray

        import_ray()  # without Ray: its one message, before the manifest is opened
        workers = None if ns.workers == "auto" else worker_plan.workers
        return RayExecutor(ns.ray or None, workers)
    workers = min(worker_plan.workers, max(pending, 1))
    return InProcessExecutor() if workers == 1 else WorkerProcessExecutor(workers)


def _print_dry_run(split, spec, worker_plan, manifest, engine_note: str) -> None:
    from studio.engine.batch.estimate import estimate_seconds, format_seconds

    redo = {id(i) for i in split.redo}
    for item in split.to_run:
        what = "redo" if id(item) in redo else "todo"
        print(f"{what}  {item.key} -> {item.output}")
    for item in split.done:
        print(f"done  {item.key} -> {item.output}")
    seconds = estimate_seconds(spec, split.to_run, manifest)
    workers = min(worker_plan.workers, max(len(split.to_run), 1))
    print(
        f"{len(split.todo)} to do, {len(split.redo)} to redo, {len(split.done)} already done; "
        f"{worker_plan.summary()}; {engine_note}"
    )
    if seconds is None:
        print("time: unknown until the first file is done (then from the manifest)")
    else:
        plural = "s" if workers > 1 else ""
        print(f"time: {format_seconds(seconds / workers)} with {workers} worker{plural}")
