"""How long a batch will take, before it runs (for ``--dry-run`` and the Batch dialog).

Measured beats modelled: once the manifest holds finished items with the same options, their
mean time per item is the estimate. Before that, upscales have the engine's own plan (output
megapixels over the model's measured speed, :func:`studio.engine.planning.plan_upscale`);
other tasks have no time model, and the estimate is unknown until the first file is done.
"""

from __future__ import annotations

from studio.engine.batch.contract import BatchItem, BatchSpec
from studio.engine.batch.manifest import Manifest
from studio.engine.jobs import UpscaleParams


def estimate_seconds(spec: BatchSpec, items: list[BatchItem], manifest: Manifest) -> float | None:
    """Seconds for ``items`` on one worker; None when unknown."""
    if not items:
        return 0.0
    if (mean := manifest.mean_seconds(spec)) is not None:
        return mean * len(items)
    if isinstance(spec.params, UpscaleParams):
        return _upscale_seconds(spec, items)
    return None


def _upscale_seconds(spec: BatchSpec, items: list[BatchItem]) -> float | None:
    from studio.engine.batch.plan import input_sizes
    from studio.engine.config import EngineConfig
    from studio.engine.device import choose_device, describe
    from studio.engine.tasks.preflight import upscale_plan

    sizes = input_sizes(items)
    if sizes is None:
        return None
    config = EngineConfig(**spec.engine)
    budget = describe(choose_device(config.device, strict=False), config.memory_budget)
    return sum(upscale_plan(spec.params, size, budget.memory_budget).seconds for size in sizes)


def format_seconds(seconds: float) -> str:
    """'under a second', '45 s', '3 min 20 s', '2 h 05 min'."""
    s = round(seconds)
    if s < 1:
        return "under a second"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
