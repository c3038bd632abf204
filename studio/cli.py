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

COMMANDS = ("upscale", "inpaint", "outpaint", "stylize", "generate", "models")
EXIT_ERROR = 1
#: the best method Studio ships (checkpoints/studio-inpaint.md: +1.5 dB over Telea in the hole)
DEFAULT_INPAINT_METHOD = "studio-inpaint"
NO_METADATA_HELP = "do not label the output with the model, parameters and seed that made it"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # e.g. `studio models list | head`: the reader left, not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush quiet
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return _run_command(args)
    parser = argparse.ArgumentParser(
        prog="studio", description="Studio image editor. Commands: " + ", ".join(COMMANDS)
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    parser.add_argument("image", nargs="?", help="image to open in the editor")
    ns = parser.parse_args(args)
    from studio.app import run_gui

    return run_gui(ns.image)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upscale", help="enlarge an image")
    up.add_argument("input")
    up.add_argument("output")
    up.add_argument(
        "--model",
        default="lanczos",
        help="model id (see: studio models list) or a .safetensors/.pth file",
    )
    up.add_argument(
        "--scale",
        type=float,
        default=None,
        help="factor, may be fractional (default: the model's own; 2 for lanczos and bicubic)",
    )
    up.add_argument(
        "--width", type=int, default=None, help="target width in pixels (wins over --scale)"
    )
    up.add_argument(
        "--tile",
        type=int,
        default=None,
        help="input tile side in pixels; 0 = no tiling; default: from memory",
    )
    up.add_argument(
        "--compile",
        action="store_true",
        help="always torch.compile the model (~40 s once per tile shape; by default it is "
        "measured and used only for jobs long enough to repay it)",
    )
    up.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default=None,
        help="default auto: the fastest precision measured on this machine within 0.5/255 "
        "of fp32 (remembered per model and tile shape)",
    )
    up.add_argument("--quiet", action="store_true", help="no progress bar")
    up.add_argument("--no-metadata", action="store_true", help=NO_METADATA_HELP)

    inp = sub.add_parser("inpaint", help="fill the masked area of an image")
    inp.add_argument("input")
    inp.add_argument("mask", help="white (or opaque) = fill; same size as the image")
    inp.add_argument("output")
    inp.add_argument(
        "--method",
        default=DEFAULT_INPAINT_METHOD,
        help="inpaint model id (studio models list) or a LaMa/MAT weight file",
    )
    inp.add_argument("--grow", type=int, default=0, help="grow (or shrink, negative) the mask, px")
    inp.add_argument("--feather", type=int, default=0, help="soft edge outside the mask, px")
    inp.add_argument("--padding", type=int, default=64, help="context around each region, px")
    inp.add_argument("--seed", type=int, default=0)
    inp.add_argument("--quiet", action="store_true")
    inp.add_argument("--no-metadata", action="store_true", help=NO_METADATA_HELP)

    out = sub.add_parser("outpaint", help="extend the canvas and fill the new area")
    out.add_argument("input")
    out.add_argument("output")
    out.add_argument(
        "--method",
        default=DEFAULT_INPAINT_METHOD,
        help="inpaint model id (studio models list) or a LaMa/MAT weight file",
    )
    for side in ("left", "right", "top", "bottom"):
        out.add_argument(f"--{side}", type=int, default=0, help=f"pixels to add on the {side}")
    out.add_argument(
        "--aspect", default=None, help="extend evenly to this aspect ratio instead, e.g. 16:9"
    )
    out.add_argument("--feather", type=int, default=8)
    out.add_argument("--seed", type=int, default=0)
    out.add_argument("--quiet", action="store_true")
    out.add_argument("--no-metadata", action="store_true", help=NO_METADATA_HELP)

    sty = sub.add_parser("stylize", help="repaint an image in a style")
    sty.add_argument("input")
    sty.add_argument("output")
    sty.add_argument(
        "--style",
        default="starry-night",
        help="a style id (studio models list), a painting preset, or a picture file",
    )
    sty.add_argument(
        "--mix",
        default=None,
        help="blend built-in styles, weights from 0 to 1: 'starry-night=0.7,copper=0.3'",
    )
    sty.add_argument("--strength", type=float, default=1.0, help="0 = original, 1 = full style")
    sty.add_argument("--preserve-colors", action="store_true", help="keep the original colours")
    sty.add_argument("--mask", default=None, help="only where the mask is white (or opaque)")
    sty.add_argument("--feather", type=int, default=8, help="soft mask edge, px")
    sty.add_argument(
        "--resolution",
        type=int,
        default=1024,
        help="long side processed (stroke size follows it); 0 = full size",
    )
    sty.add_argument("--tile", type=int, default=None, help="tile side; 0 = never tile")
    sty.add_argument("--quiet", action="store_true")
    sty.add_argument("--no-metadata", action="store_true", help=NO_METADATA_HELP)

    gen = sub.add_parser("generate", help="new images from noise (a grid to pick from)")
    gen.add_argument("output", help="the grid image; with --count 1 just the image")
    gen.add_argument("--noise", action="store_true", help="generate from noise (the default)")
    gen.add_argument("--model", default="studio-emoji-gan", help="generate model id or file")
    gen.add_argument("--seed", type=int, default=0, help="cell i uses seed + i")
    gen.add_argument("--count", type=int, default=16)
    gen.add_argument(
        "--truncation", type=float, default=1.0, help="< 1: safer, less varied; > 1: wilder"
    )
    gen.add_argument(
        "--interpolate-to",
        type=int,
        default=None,
        metavar="SEED_B",
        help="a strip from --seed to this seed instead of a grid",
    )
    gen.add_argument(
        "--variations-of",
        default=None,
        metavar="IMAGE",
        help="variations of this image (VAE models)",
    )
    gen.add_argument("--strength", type=float, default=0.5, help="how far variations wander")
    gen.add_argument(
        "--upscale",
        default=None,
        metavar="MODEL",
        help="enlarge each image with this upscale model to --size",
    )
    gen.add_argument("--size", type=int, default=256, help="cell size after --upscale")
    gen.add_argument("--quiet", action="store_true")
    gen.add_argument("--no-metadata", action="store_true", help=NO_METADATA_HELP)

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
    ns = _build_parser().parse_args(args)
    restore_signals = _unwind_on_signals()
    try:
        if ns.command == "upscale":
            return _upscale(ns)
        if ns.command == "inpaint":
            return _inpaint(ns)
        if ns.command == "outpaint":
            return _outpaint(ns)
        if ns.command == "stylize":
            return _stylize(ns)
        if ns.command == "generate":
            return _generate(ns)
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

    rows = all_models(task)
    width = max(len(m.id) for m in rows) if rows else 10
    for m in rows:
        scale = f"x{m.scale}" if m.task == "upscale" and m.scale > 1 else ""
        print(f"{m.id:<{width}}  {m.task:<8} {scale:<4} {m.speed_hint:<10} {m.description}")
    if task in (None, "stylize"):
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


def _upscale(ns: argparse.Namespace) -> int:
    from studio.engine.jobs import JobRequest, UpscaleParams
    from studio.engine.tasks.context import is_weight_path
    from studio.models.registry import get_model
    from studio.project_io import check_output, write_result

    if not is_weight_path(ns.model):
        get_model(ns.model, "upscale")  # fail on a bad name or path before any work
    check_output(ns.output)
    params = UpscaleParams(model=ns.model, scale=ns.scale, target_width=ns.width, tile=ns.tile)
    loaded = _read_input(ns.input, params)
    overrides = {"compile": "on" if ns.compile else None, "precision": ns.precision}
    image = _run_headless(JobRequest(params, loaded.pixels), quiet=ns.quiet, **overrides)
    write_result(ns.output, image, loaded, params, labels=not ns.no_metadata)
    if not ns.quiet:
        print(f"wrote {ns.output} ({image.shape[1]}x{image.shape[0]})", file=sys.stderr)
    return 0


def _inpaint(ns: argparse.Namespace) -> int:
    from studio.engine.jobs import InpaintParams, JobRequest
    from studio.engine.tasks.context import is_weight_path
    from studio.imageio import read_mask
    from studio.models.registry import get_model
    from studio.project_io import check_output, write_result

    if not is_weight_path(ns.method):
        get_model(ns.method, "inpaint")
    check_output(ns.output)
    params = InpaintParams(
        method=ns.method, grow=ns.grow, feather=ns.feather, padding=ns.padding, seed=ns.seed
    )
    loaded = _read_input(ns.input, params)
    h, w = loaded.pixels.shape[:2]
    mask = read_mask(ns.mask, (w, h))
    image = _run_headless(JobRequest(params, loaded.pixels, mask=mask), quiet=ns.quiet)
    write_result(ns.output, image, loaded, params, labels=not ns.no_metadata)
    return 0


def _outpaint(ns: argparse.Namespace) -> int:
    from studio.engine.jobs import JobRequest, OutpaintParams
    from studio.engine.tasks.context import is_weight_path
    from studio.engine.tasks.inpaint import margins_for_aspect, parse_aspect
    from studio.errors import BadInputError
    from studio.models.registry import get_model
    from studio.project_io import check_output, read_input_header, write_result

    if not is_weight_path(ns.method):
        get_model(ns.method, "inpaint")
    check_output(ns.output)
    margins = {side: getattr(ns, side) for side in ("left", "right", "top", "bottom")}
    if ns.aspect is not None:
        if any(margins.values()):
            raise BadInputError("give either --aspect or the sides to extend, not both")
        header = read_input_header(ns.input)  # the size, without decoding the pixels yet
        w, h = header.width, header.height
        margins = margins_for_aspect(w, h, parse_aspect(ns.aspect))
        if not any(margins.values()):
            raise BadInputError(f"the image ({w}x{h}) already has the aspect ratio {ns.aspect}")
    params = OutpaintParams(method=ns.method, feather=ns.feather, seed=ns.seed, **margins)
    loaded = _read_input(ns.input, params)
    image = _run_headless(JobRequest(params, loaded.pixels), quiet=ns.quiet)
    write_result(ns.output, image, loaded, params, labels=not ns.no_metadata)
    return 0


def _stylize(ns: argparse.Namespace) -> int:
    from studio.engine.jobs import IMAGE_STYLE, JobRequest, StylizeParams
    from studio.errors import BadInputError
    from studio.imageio import read_mask
    from studio.project_io import check_output, write_result

    check_output(ns.output)
    style, style_image, mix = ns.style, None, ()
    if Path(ns.style).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"):
        style, style_image = IMAGE_STYLE, _read_input(ns.style).pixels
    if ns.mix:
        try:
            mix = tuple(
                (name.strip(), float(weight))
                for name, weight in (part.split("=") for part in ns.mix.split(","))
            )
        except ValueError:
            raise BadInputError(
                "--mix takes name=weight pairs, e.g. starry-night=0.7,copper=0.3"
            ) from None
    params = StylizeParams(
        style=style,
        mix=mix,
        style_image=style_image,
        strength=ns.strength,
        preserve_colors=ns.preserve_colors,
        resolution=ns.resolution,
        tile=ns.tile,
        feather=ns.feather,
    )
    loaded = _read_input(ns.input, params)
    h, w = loaded.pixels.shape[:2]
    mask = read_mask(ns.mask, (w, h)) if ns.mask else None
    image = _run_headless(JobRequest(params, loaded.pixels, mask=mask), quiet=ns.quiet)
    write_result(ns.output, image, loaded, params, labels=not ns.no_metadata)
    return 0


def _generate(ns: argparse.Namespace) -> int:
    from studio.engine.jobs import JobRequest
    from studio.engine.tasks.generate import GenerateParams, no_pixels
    from studio.project_io import check_output, write_result

    check_output(ns.output)
    mode, image = "samples", no_pixels()
    if ns.interpolate_to is not None:
        mode = "interpolate"
    if ns.variations_of:
        mode = "variations"
    params = GenerateParams(
        model=ns.model,
        seed=ns.seed,
        count=ns.count,
        truncation=ns.truncation,
        mode=mode,
        seed_b=ns.interpolate_to if ns.interpolate_to is not None else 1,
        strength=ns.strength,
        upscale_model=ns.upscale,
        out_size=ns.size,
    )
    if ns.variations_of:
        image = _read_input(ns.variations_of).pixels[:, :, :3]
    grid = _run_headless(JobRequest(params, image), quiet=ns.quiet)  # one cell: the image
    write_result(ns.output, grid, None, params, labels=not ns.no_metadata)
    return 0


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
    from studio.engine.config import EngineConfig
    from studio.paths import user_data_dir

    config = EngineConfig.from_environment(interactive=False, data_dir=user_data_dir())
    return config.with_overrides(**overrides)


def _run_headless(request, quiet: bool = False, **overrides):
    """Run one job in this thread with every core, drawing a progress bar; returns the image."""
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
                return msg.image
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
