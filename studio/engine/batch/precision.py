"""The precision and compile mode of a batch, fixed once in the parent before anything runs.

Under "auto" a worker would measure for itself (:mod:`studio.engine.tasks.tuned`), keyed by its
thread count and tile shape: the choice, and so the output bytes, would depend on how many
workers share the cores, on which image a worker met first, and on which worker measured first.
So the parent resolves "auto" once, :func:`resolve_engine`, to a concrete precision and compile
mode that go into ``spec.engine`` and into the options hash: every worker runs that variant,
a resumed run with another worker count writes the same bytes, and a changed choice redoes the
files (through the hash).

The choice is the engine's own: :func:`~studio.engine.tasks.tuned.tuned_variant` on the batch's
model, on the first tile of the first readable input, looked up in the tuning store or measured
(and stored). It is measured with the thread count of the whole configuration
(:attr:`EngineConfig.cpu_threads`), not a worker's share: a worker's share changes with the
worker count (2 threads with one worker, 1 each with two on two cores), which would make the
choice depend on it again; and this is what ``studio upscale`` on one file measures, so its
stored choice is reused and a batch output stays the single-file command's bytes. What bf16
gains over fp32 follows the instruction set far more than the thread count.

Tasks with no measured image model run what "auto" gives without measuring: classical methods,
inpaint, stylize, generate: fp16 on CUDA, fp32 elsewhere, never compiled. (A Stable Diffusion
generate would measure its UNet and VAE apart; one batch precision cannot say "UNet bf16, VAE
fp32", so a batch runs it in fp32 unless ``STUDIO_PRECISION`` gives one.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from studio.engine.batch.contract import BatchItem
from studio.engine.config import EngineConfig
from studio.errors import StudioError


@dataclasses.dataclass(frozen=True)
class EngineChoice:
    """Concrete ``precision`` and ``compile`` for every worker, and a line saying why."""

    precision: str
    compile: str
    note: str


def resolve_engine(params: Any, items: Sequence[BatchItem], config: EngineConfig) -> EngineChoice:
    """``config.precision`` and ``config.compile`` with "auto" resolved (see the module
    docstring); explicit values are kept. May load the model and measure it (seconds, once
    per machine, model and tile shape when the configuration has a tuning file)."""
    if config.precision != "auto" and config.compile != "auto":
        return EngineChoice(config.precision, config.compile, f"precision {config.precision}")
    if needs_measuring(params, config):
        measured = _measure_upscale(params, items, config)
        if measured is not None:
            return measured
    return _unmeasured(config)


def resolve_engine_apart(
    params: Any, items: Sequence[BatchItem], config: EngineConfig
) -> EngineChoice:
    """:func:`resolve_engine` in a spawned process when it measures (the editor: measuring
    sets torch's process-wide thread count and loads a model the editor does not need)."""
    if not needs_measuring(params, config):
        return resolve_engine(params, items, config)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(resolve_engine, params, list(items), config).result()


def needs_measuring(params: Any, config: EngineConfig) -> bool:
    """True when "auto" is resolved by the tuner: an upscale with a network model."""
    from studio.engine.jobs import UpscaleParams

    if config.precision != "auto" and config.compile != "auto":
        return False
    return isinstance(params, UpscaleParams) and _network_spec(params.model) is not None


def _unmeasured(config: EngineConfig) -> EngineChoice:
    """What "auto" runs without measuring (:meth:`TaskContext.preferred_dtype`, no compile)."""
    from studio.engine.device import choose_device

    precision = config.precision
    if precision == "auto":
        precision = "fp16" if choose_device(config.device, strict=False).type == "cuda" else "fp32"
    compile_mode = "off" if config.compile == "auto" else config.compile
    return EngineChoice(precision, compile_mode, f"precision {precision} (nothing to measure)")


def _network_spec(model: str) -> Any | None:
    """The registry spec of an upscale model with a network, or None for a classical method;
    "user" for a weight file (its spec needs its weights)."""
    from studio.engine.tasks.context import is_weight_path
    from studio.models.registry import get_model
    from studio.task_kind import TaskKind

    if is_weight_path(model):
        return "user"
    spec = get_model(model, TaskKind.UPSCALE)
    return None if spec.arch == "classical" else spec


def _measure_upscale(
    params: Any, items: Sequence[BatchItem], config: EngineConfig
) -> EngineChoice | None:
    import torch

    from studio.engine.device import choose_device, configure_cpu_threads, describe
    from studio.engine.tasks.tuned import candidate_variants, tuned_variant
    from studio.engine.tasks.upscale import tuning_model_key, user_weights_spec
    from studio.models.loading import load_registered, load_weights

    info = describe(choose_device(config.device, strict=False), config.memory_budget)
    spec = _network_spec(params.model)
    if spec != "user" and len(candidate_variants(config, info, spec.supports_half, False)) == 1:
        # one eager candidate: the tuner would neither measure nor compile (no model to load)
        (only,) = candidate_variants(config, info, spec.supports_half, False)
        precision = only.dtype if config.precision == "auto" else config.precision
        compile_mode = "off" if config.compile == "auto" else config.compile
        why = " (the only one here)" if config.precision == "auto" else ""
        return EngineChoice(precision, compile_mode, f"precision {precision}{why}")
    if spec == "user":
        loaded = load_weights(params.model)
        spec = user_weights_spec(params.model, loaded.scale, loaded.arch_id, loaded.supports_half)
    else:
        loaded = load_registered(spec)[0]
    found = _first_tile(params, items, spec, loaded.receptive_field, info.memory_budget)
    if found is None:
        return None  # nothing readable: every item fails alone, with its reason
    sample, job_tiles = found
    previous = torch.get_num_threads()
    threads = configure_cpu_threads(config.cpu_threads)
    tuning = tuned_variant(
        config, info, tuning_model_key(spec, params.model), loaded, sample, job_tiles, _go_on
    )
    measured = False
    try:
        with torch.inference_mode():
            while True:
                next(tuning)
                measured = True  # the tuner yields progress only while it measures
    except StopIteration as done:
        result = done.value
    finally:
        torch.set_num_threads(previous)
    precision = result.chosen.dtype if config.precision == "auto" else config.precision
    compiled = result.chosen.compiled if config.compile == "auto" else config.compile == "on"
    note = _note(result, precision, threads, measured)
    if config.precision != "auto":
        note = f"precision {precision}{', compiled' if compiled else ''}"
    return EngineChoice(precision, "on" if compiled else "off", note)


def _first_tile(params: Any, items: Sequence[BatchItem], spec: Any, receptive: int, budget: int):
    """The first tile of the first input that reads and plans (as the upscale task cuts it),
    in [0, 1] float32, and that input's tile count; None when no input does."""
    from studio import pixels
    from studio.engine.planning import plan_upscale
    from studio.engine.tasks.upscale import context_pad
    from studio.engine.tiling import plan_tiles
    from studio.project_io import read_input

    for item in items:
        if item.source is None:
            continue
        try:
            image = read_input(item.source).pixels
            h, w = image.shape[:2]
            plan = plan_upscale(spec, w, h, params, budget, image.shape[2], image.dtype.itemsize)
        except (StudioError, OSError, ValueError):
            continue
        tiles = plan_tiles(w, h, plan.tile, context_pad(receptive), uniform=True)
        return pixels.to_unit(image[:, :, :3])[tiles[0].context.slices], len(tiles)
    return None


def _note(result: Any, precision: str, threads: int, measured: bool) -> str:
    """'precision bf16 (measured 2.6x fp32 here on a 64x64 tile, 2 threads)'."""
    from studio.engine.autotune import FP32_EAGER

    compiled = ", compiled" if result.chosen.compiled else ""
    others = [m for m in result.measurements if m.variant != FP32_EAGER]
    base = {m.variant: m.seconds for m in result.measurements}.get(FP32_EAGER)
    if not others or not base:
        return f"precision {precision}{compiled} (the only one here)"
    h, w = result.tile_shape
    where = f"here on a {w}x{h} tile, {threads} thread{'s' if threads != 1 else ''}"
    when = "measured" if measured else "measured before"
    if result.chosen != FP32_EAGER:
        return f"precision {precision}{compiled} ({when} {result.speedup:.1f}x fp32 {where})"
    best = min(others, key=lambda m: m.seconds)
    if not best.within_tolerance:
        return f"precision {precision} ({best.variant.label} {when} beyond 0.5/255 {where})"
    speed = f"{base / best.seconds:.1f}x fp32"
    return f"precision {precision} ({best.variant.label} {when} {speed} {where})"


def _go_on() -> None:
    """The tuner's cancel check: planning is not cancelled midway."""
