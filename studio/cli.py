"""``studio``: the GUI with no arguments (or an image path); headless tasks as subcommands.

Headless commands run the same :class:`~studio.engine.runner.JobRunner` the GUI uses, with a
progress bar on stderr. Every error is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from studio import __version__
from studio.errors import StudioError, os_error_message

EXIT_ERROR = 1
NO_METADATA_HELP = "do not label the output with the model, parameters and seed that made it"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # e.g. `studio models list | head`: the reader left, not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush quiet
        return 0


def commands() -> list[str]:
    """The subcommands: one per task of the task table, then ``batch`` and ``models``."""
    from studio.engine.task_table import kind_names

    return [*kind_names(), "batch", "models"]


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in commands():
        return _run_command(args)
    parser = argparse.ArgumentParser(
        prog="studio", description="Studio image editor. Commands: " + ", ".join(commands())
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    parser.add_argument("image", nargs="?", help="image to open in the editor")
    ns = parser.parse_args(args)
    from studio.app import run_gui

    return run_gui(ns.image)


def _build_parser(tasks: bool = True) -> argparse.ArgumentParser:
    """The subcommands: each task's from its row in the task table (``tasks``: False leaves
    them out, so that ``studio models`` does not import the task modules), then ``models``."""
    from studio.engine.task_table import all_tasks

    parser = argparse.ArgumentParser(prog="studio")
    sub = parser.add_subparsers(dest="command", required=True)
    for task in all_tasks() if tasks else ():
        if task.cli is None:
            continue
        command = sub.add_parser(str(task.kind), help=task.cli.help)
        task.cli.add_arguments(command)  # a task's command always has an ``output``
        command.add_argument("--quiet", action="store_true", help="no progress bar")
        if task.cli.report is None:  # only a written image carries metadata
            command.add_argument("--no-metadata", action="store_true", help=NO_METADATA_HELP)
        command.set_defaults(task_def=task)
    if tasks:
        from studio.batch_cli import add_batch_parser

        add_batch_parser(sub, NO_METADATA_HELP)

    models = sub.add_parser("models", help="list or import models")
    msub = models.add_subparsers(dest="models_command", required=True)
    lst = msub.add_parser("list", help="list the models Studio ships")
    lst.add_argument("--task", default=None)
    info = msub.add_parser(
        "info", help="a model's details and the precision/compile mode measured fastest here"
    )
    info.add_argument("model", help="model id (studio models list)")
    imp = msub.add_parser("import-ncnn", help="convert ncnn .param/.bin to .safetensors")
    imp.add_argument("param")
    imp.add_argument("bin")
    imp.add_argument("output", help="the .safetensors file to write")
    imp.add_argument(
        "--arch",
        default=None,
        choices=("rrdbnet", "srvgg", "upconv7"),
        help="architecture (default: detected from the graph)",
    )
    return parser


def _run_command(args: list[str]) -> int:
    ns = _build_parser(tasks=args[0] != "models").parse_args(args)
    restore_signals = _unwind_on_signals()
    try:
        if (task := getattr(ns, "task_def", None)) is not None:
            return _run_task(task, ns)
        if ns.command == "batch":
            from studio.batch_cli import run_batch_command

            return run_batch_command(ns)
        if ns.command == "models" and ns.models_command == "list":
            return _models_list(ns.task)
        if ns.command == "models" and ns.models_command == "info":
            return _models_info(ns.model)
        if ns.command == "models" and ns.models_command == "import-ncnn":
            return _import_ncnn(ns)
    except StudioError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        raise  # stdout's reader left: main() ends quietly
    except OSError as exc:  # a disk full, a permission or an I/O error while reading or writing
        print(f"studio: error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        print("studio: cancelled", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    finally:
        restore_signals()
    raise AssertionError("unreachable")


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGINT) as an exception, so that ``finally`` blocks and half-written
    temporary files are cleaned up exactly as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def _unwind_on_signals() -> Callable[[], None]:
    """Make SIGTERM and SIGINT raise :class:`Terminated`; returns the function that undoes it.

    Python's default for SIGTERM kills the process without unwinding. A signal that is ignored
    (``nohup``, a background job) stays ignored; outside the main thread nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _raise_terminated)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def _models_info(model_id: str) -> int:
    import torch

    from studio.engine.autotune import machine_fingerprint
    from studio.engine.device import choose_device
    from studio.engine.tasks.tuned import tuning_results
    from studio.models.registry import get_model

    spec = get_model(model_id)
    config = engine_config()
    device = choose_device(config.device, strict=False)
    threads = config.cpu_threads if device.type == "cpu" else torch.get_num_threads()
    print(f"{spec.id}: {spec.name} ({spec.task}, architecture {spec.arch})")
    if spec.files:
        print(f"  weights: {spec.files[0].name} (sha256 {spec.files[0].sha256[:16]}…)")
    print(f"  licence: {spec.license}")
    results = tuning_results(config, machine_fingerprint(device, threads), spec)
    if not results:
        print(
            f"  on this machine ({device.type}, {threads} threads): not measured yet; the first "
            "job measures fp32 against bf16 (and compiled, for long jobs) and keeps the fastest"
        )
    for r in results:
        print(f"  on this machine ({device.type}, {threads} threads): {r.summary()}")
        for m in r.measurements:
            ok = "ok" if m.within_tolerance else "over tolerance"
            print(
                f"    {m.variant.label:14s} {m.seconds:8.3f} s/tile"
                f"  mean {m.mean_error * 255:.2f}/255  max {m.max_error * 255:.2f}/255  {ok}"
            )
    return 0


def _models_list(task: str | None) -> int:
    from studio.models.registry import all_models
    from studio.models.style_names import STYLES
    from studio.task_kind import TaskKind

    rows = all_models(task)
    width = max(len(m.id) for m in rows) if rows else 10
    for m in rows:
        scale = f"x{m.scale}" if m.task == TaskKind.UPSCALE and m.scale > 1 else ""
        print(f"{m.id:<{width}}  {m.task:<8} {scale:<4} {m.speed_hint:<10} {m.description}")
    if task in (None, TaskKind.STYLIZE):
        print("\nstyles (studio stylize --style ID):")
        for _index, style_id, _name, description in STYLES:
            print(f"  {style_id:<22} {description}")
        try:
            from studio.models.style_presets import painting_presets
        except ImportError:
            return 0
        print("\npainting presets (studio stylize --style ID):")
        for preset in painting_presets():
            print(f"  {preset.id:<22} {preset.credit}")
    return 0


def _import_ncnn(ns: argparse.Namespace) -> int:
    from studio.atomic_write import check_destination
    from studio.errors import BadInputError
    from studio.models.ncnn import import_ncnn

    if not ns.output.endswith(".safetensors"):
        raise BadInputError(f"{ns.output}: the output must be a .safetensors file")
    for path in (ns.param, ns.bin):
        if not Path(path).is_file():
            raise BadInputError(f"{path}: no such file")
    check_destination(ns.output)
    summary = import_ncnn(ns.param, ns.bin, ns.output, ns.arch)
    print(
        f"wrote {summary['out_path']}: {summary['arch']} x{summary['scale']}, "
        f"{summary['params']:,} parameters, sha256 {summary['sha256']}"
    )
    for warning in summary["warnings"]:
        print(f"note: {warning}", file=sys.stderr)
    return 0


def _run_task(task, ns: argparse.Namespace) -> int:
    """A task's command: check the output can be written, build the job from the task's row,
    read its inputs, run it, write the result."""
    from studio.engine.jobs import JobRequest
    from studio.imageio import read_mask
    from studio.project_io import check_output, write_result

    if task.cli.report is None:  # a task that prints its result has no output file
        check_output(ns.output)
    job = task.cli.build(ns, _CliReader())
    loaded = _read_input(job.image, job.params) if job.image is not None else None
    pixels = job.pixels if loaded is None else loaded.pixels
    mask = None
    if job.mask is not None:
        h, w = pixels.shape[:2]
        mask = read_mask(job.mask, (w, h))
    request = JobRequest(job.params, pixels, mask=mask)
    if task.cli.report is not None:
        task.cli.report(_run_headless(request, quiet=ns.quiet, whole=True, **job.engine).info)
        return 0
    image = _run_headless(request, quiet=ns.quiet, **job.engine)
    write_result(ns.output, image, loaded, job.params, labels=not ns.no_metadata)
    if job.report_size and not ns.quiet:
        print(f"wrote {ns.output} ({image.shape[1]}x{image.shape[0]})", file=sys.stderr)
    return 0


class _CliReader:
    """What a task's command may read while it builds its job (see ``CliReader``)."""

    def size(self, path: str) -> tuple[int, int]:
        from studio.project_io import read_input_header

        header = read_input_header(path)
        return header.width, header.height

    def picture(self, path: str):
        return _read_input(path).pixels


def _read_input(path: str, params: object = None):
    """Decode an input image, but first refuse from its header a job that cannot fit in memory
    (``params``); warn on stderr when an animated file's other frames are left out."""
    from studio.imageio import frames_note
    from studio.project_io import read_input, read_input_header

    if params is not None:
        from studio.engine.device import choose_device, describe
        from studio.engine.tasks.preflight import ImageSize, check_fits

        config = engine_config()
        header = read_input_header(path)
        size = ImageSize(header.width, header.height, header.channels, header.itemsize)
        device = choose_device(config.device, strict=False)
        budget = describe(device, config.memory_budget).memory_budget
        check_fits(params, size, budget, decoding=True)
    loaded = read_input(path)
    if note := frames_note(path, loaded.metadata):
        print(f"studio: warning: {note}", file=sys.stderr)
    return loaded


def engine_config(**overrides):
    """The engine settings of a headless run: the environment, then the command's options."""
    from studio.engine.config import EngineConfig, use_compile_cache
    from studio.paths import user_data_dir

    config = EngineConfig.from_environment(interactive=False, data_dir=user_data_dir())
    use_compile_cache(config)
    return config.with_overrides(**overrides)


def _run_headless(request, quiet: bool = False, whole: bool = False, **overrides):
    """Run one job in this thread with every core, drawing a progress bar; returns the image
    (``whole``: the :class:`JobFinished` message, with the result's ``info``)."""
    import torch

    from studio.engine.device import configure_cpu_threads
    from studio.engine.jobs import CancelToken
    from studio.engine.messages import (
        JobCancelled,
        JobFailed,
        JobFinished,
        JobProgress,
        ModelLoading,
    )
    from studio.engine.runner import JobRunner

    config = engine_config(**overrides)
    configure_cpu_threads(config.cpu_threads)
    bar = ProgressBar(enabled=not quiet)
    with torch.inference_mode():
        for msg in JobRunner(config).run(request, CancelToken()):
            if isinstance(msg, JobProgress):
                bar.update(msg.fraction, f"{msg.stage} {msg.done}/{msg.total}", msg.eta_s)
            elif isinstance(msg, ModelLoading):
                bar.update(0.0, f"loading {msg.model_id}", None)
            elif isinstance(msg, JobFinished):
                bar.close()
                return msg if whole else msg.image
            elif isinstance(msg, JobFailed):
                bar.close()
                raise StudioError(msg.message)
            elif isinstance(msg, JobCancelled):
                bar.close()
                raise StudioError("cancelled")
    raise StudioError("the job ended without a result")


class ProgressBar:
    """A one-line progress bar on stderr; plain lines every 10 % when stderr is not a terminal."""

    def __init__(self, enabled: bool = True, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self._last_decile = -1
        self._last_draw = 0.0

    def update(self, fraction: float, label: str, eta_s: float | None) -> None:
        if not self.enabled:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        eta = f" ETA {eta_s:4.0f}s" if eta_s is not None else ""
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.05 and fraction < 1.0:
                return
            self._last_draw = now
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            sys.stderr.write(f"\r[{bar}] {fraction:4.0%} {label}{eta}\033[K")
            sys.stderr.flush()
        elif (decile := int(fraction * 10)) != self._last_decile:
            self._last_decile = decile
            print(f"{fraction:4.0%} {label}{eta}", file=sys.stderr)

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


if __name__ == "__main__":
    sys.exit(main())
