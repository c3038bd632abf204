"""What the engine found about its device, published once its runner is built.

The editor must not probe the device on the GUI thread (``describe`` asks CUDA for free memory
and reads /proc): the engine thread does it while starting and sends one :class:`EngineReady`,
which panels use for their estimates (with :data:`DEFAULT_BUDGET` until it arrives).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from studio.engine.autotune import machine_fingerprint
from studio.engine.config import EngineConfig
from studio.engine.device import DeviceInfo
from studio.engine.tasks.tuned import tuning_results
from studio.models.registry import all_models

#: the memory budget assumed before the engine has reported (a CPU's usual budget)
DEFAULT_BUDGET = 2 << 30


@dataclass(frozen=True)
class EngineReady:
    """``device`` ("cpu", "cuda", ...), its readable ``name``, the ``memory_budget`` in bytes
    jobs are planned for, whether bf16 is fast here, the CPU ``threads``, and ``tuned``: for
    each registry model measured on this machine, the variant chosen (``TuneResult.summary``)."""

    device: str
    name: str
    memory_budget: int
    supports_bf16: bool
    threads: int
    tuned: Mapping[str, str] = field(default_factory=dict)


def engine_report(config: EngineConfig, info: DeviceInfo) -> EngineReady:
    """The report for ``info`` under ``config``; call it on the engine thread."""
    threads = torch.get_num_threads()
    machine = machine_fingerprint(info.device, threads)
    tuned = {}
    for spec in all_models():
        if not spec.files:
            continue
        results = tuning_results(config, machine, spec)
        if results:  # the largest tile measured is the one a large job runs
            best = max(results, key=lambda r: r.tile_shape[0] * r.tile_shape[1])
            tuned[spec.id] = best.summary()
    return EngineReady(
        device=str(info.device),
        name=info.name,
        memory_budget=info.memory_budget,
        supports_bf16=info.supports_bf16,
        threads=threads,
        tuned=tuned,
    )
