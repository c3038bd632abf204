"""An image model in the precision and compile mode measured fastest on this machine.

:func:`tuned_variant` asks the tuning store (see :mod:`studio.engine.autotune`) for the choice
made earlier for this machine, model and tile shape, and measures the candidates once when there
is none. Which candidates are measured follows the :class:`EngineConfig`: a fixed precision or
compile mode is taken as it is; "auto" measures. Compiling costs tens of seconds per shape, so
under "auto" the compiled variants are measured (and used) only for a job whose eager run would
take longer than :data:`COMPILE_PAYS_AFTER_S`.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Generator
from dataclasses import replace

import numpy as np
import torch

from studio.engine.autotune import (
    TuneResult,
    TuningStore,
    Variant,
    choose,
    machine_fingerprint,
    measure,
)
from studio.engine.config import EngineConfig
from studio.engine.device import DeviceInfo
from studio.engine.events import Progress
from studio.models.arch import LoadedModel
from studio.models.descriptor import ImageModel
from studio.models.spec import ModelSpec

#: an eager job at least this long may compile (compiling one shape costs ~40-100 s on a CPU)
COMPILE_PAYS_AFTER_S = 120.0


def candidate_variants(
    config: EngineConfig, info: DeviceInfo, supports_half: bool, compiled: bool
) -> list[Variant]:
    """The variants worth measuring on this device under ``config``."""
    if config.precision != "auto":
        dtypes = [config.precision if supports_half else "fp32"]
    elif info.device.type == "cuda" and supports_half:
        dtypes = ["fp16"]  # measured elsewhere to be right on every CUDA GPU we target
    elif info.device.type == "cpu" and supports_half and info.supports_bf16:
        dtypes = ["fp32", "bf16"]
    else:
        dtypes = ["fp32"]
    if dtypes == ["bf16"] and not (info.supports_bf16 or info.device.type == "cuda"):
        dtypes = ["fp32"]
    if dtypes == ["fp16"] and info.device.type == "cpu":
        dtypes = ["fp32"]
    modes = {"on": [True], "off": [False]}.get(
        config.compile, [False, True] if compiled else [False]
    )
    if True in modes and not compiler_available():
        modes = [False]
    return [Variant(d, c) for d in dtypes for c in modes]


def compiler_available() -> bool:
    """torch.compile's CPU backend needs a C++ compiler on the PATH."""
    return shutil.which("g++") is not None or shutil.which("c++") is not None


def build_variant(loaded: LoadedModel, device: torch.device, variant: Variant) -> ImageModel:
    """An :class:`ImageModel` for ``variant``; the module is copied, so ``loaded`` keeps fp32."""
    own = replace(loaded, module=copy.deepcopy(loaded.module))
    return ImageModel(own, device, variant.torch_dtype, compiled=variant.compiled)


def tuned_variant(
    config: EngineConfig,
    info: DeviceInfo,
    model_key: str,
    loaded: LoadedModel,
    sample: np.ndarray,
    job_tiles: int,
    should_stop: Callable[[], None],
) -> Generator[Progress, None, TuneResult]:
    """The variant to run ``loaded`` with for tiles shaped like ``sample`` (HxWxC float32).

    Looked up in the tuning store, or measured on ``sample`` (progress is yielded) and stored.
    """
    store = tuning_store(config)
    machine = machine_fingerprint(info.device, torch.get_num_threads())
    shape = (int(sample.shape[0]), int(sample.shape[1]))
    eager = candidate_variants(config, info, loaded.supports_half, compiled=False)
    result = yield from _lookup_or_measure(
        store, machine, model_key, shape, eager, loaded, info, sample, should_stop
    )
    if config.compile != "auto" or len(eager) == 0:
        return result
    by = {m.variant: m.seconds for m in result.measurements}
    eager_job_s = by.get(result.chosen, 0.0) * job_tiles
    with_compile = candidate_variants(config, info, loaded.supports_half, compiled=True)
    if eager_job_s < COMPILE_PAYS_AFTER_S or with_compile == eager:
        return result
    return (
        yield from _lookup_or_measure(
            store, machine, model_key, shape, with_compile, loaded, info, sample, should_stop
        )
    )


def _lookup_or_measure(
    store, machine, model_key, shape, variants, loaded, info, sample, should_stop
) -> Generator[Progress, None, TuneResult]:
    label = ",".join(v.label for v in variants)
    key = store.key(machine, model_key, shape, label)
    if (found := store.get(key)) is not None:
        return found
    if len(variants) == 1:  # nothing to choose between: no measuring
        return TuneResult(variants[0], (), shape)
    yield Progress(0, 1, f"measuring the fastest precision for this machine ({label})")

    def build(variant: Variant):
        return build_variant(loaded, info.device, variant)

    # measure() always runs fp32 eager first as the reference; it is chosen only when it is
    # one of the candidates, or when no candidate stays within tolerance
    measurements = measure(build, sample, variants, repeats=1, should_stop=should_stop)
    allowed = [m for m in measurements if m.variant in variants]
    result = TuneResult(choose(allowed), tuple(measurements), shape)
    store.put(key, result)
    return result


def model_key(spec: ModelSpec) -> str:
    """Names the weights of a registry model in tuning records: its id and file hash."""
    sha = spec.files[0].sha256[:12] if spec.files else ""
    return f"{spec.id}@{sha}"


def tuning_results(config: EngineConfig, machine: str, spec: ModelSpec) -> list[TuneResult]:
    """What was measured for ``spec`` on ``machine`` (for ``studio models info``, the panels)."""
    return tuning_store(config).results_for(machine, model_key(spec))


def tuning_store(config: EngineConfig) -> TuningStore:
    """Where measured choices are remembered: the configured tuning file, else this process."""
    if config.tuning_file is not None:
        return TuningStore(config.tuning_file)
    return _PROCESS_STORE  # no tuning file configured: remembered for this process only


_PROCESS_STORE = TuningStore(None)
