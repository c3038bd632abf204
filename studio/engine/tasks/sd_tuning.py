"""A Stable Diffusion pipeline in the precision measured fastest on this machine, remembered.

The tuner of :mod:`studio.engine.autotune` measures image models on a tile against the pixel
tolerance. A Stable Diffusion pipeline is measured in two parts, each once per machine and
network shape (not per file: every SD 1.5 checkpoint shares its UNet's measurement):

- the UNet, one call at 32x32 latents, batch 1 (one warm-up, the best of two timed runs, so
  one run slowed by another program does not pick a variant for good). Its output
  is a noise prediction, not pixels, so it has its own tolerance: relative to the prediction's
  size (:data:`UNET_TOLERANCE`). bf16 weights measured 1.2-1.4 % mean and 7.5-8 % max relative
  error on a true-size random SD 1.5 UNet here; over a whole run on a tiny random pipeline the
  images moved 0.5 of 255 on average (tests/models/sd/test_speed.py). On trained weights that
  was not measured (none reach this machine);
- the VAE decoder, 128x128 pixels out, against the pixel tolerance every image model meets.

Under ``compile="auto"`` compiling is not measured for SD: compiling costs 40-100 s per shape
for the far smaller image models (see :mod:`studio.engine.tasks.tuned`), the UNet recompiles
when CFG switches its batch, and its gain here was not measured. ``compile="on"`` compiles it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import torch

from studio.engine.autotune import (
    Measurement,
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
from studio.engine.tasks.tuned import candidate_variants, tuning_store
from studio.models.sd.speed import PROBE_LATENT, prepare_pipeline, unet_probe, vae_probe

#: (mean, max) error of a variant's noise prediction against fp32, relative to the mean
#: magnitude of the fp32 prediction
UNET_TOLERANCE = (0.02, 0.25)


@dataclass(frozen=True)
class SDTuning:
    """What runs the UNet and the VAE, and what was measured for each."""

    unet: TuneResult
    vae: TuneResult

    def summary(self) -> str:
        return f"UNet {self.unet.summary()}; VAE {self.vae.summary()}"


def network_key(part: str, module: Any) -> str:
    """Names a network's shape (not its weights) in tuning records: ``part`` and a digest of
    its diffusers config, so every checkpoint of one architecture shares a measurement."""
    config = {k: v for k, v in dict(module.config).items() if not k.startswith("_")}
    text = json.dumps(config, sort_keys=True, default=str)
    return f"sd-{part}@{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def tuned_pipeline(
    config: EngineConfig,
    info: DeviceInfo,
    pipe: Any,
    should_stop: Callable[[], None],
    latent: tuple[int, int] = PROBE_LATENT,
) -> Generator[Progress, None, SDTuning]:
    """Prepare ``pipe`` (in place, see :func:`prepare_pipeline`) in the variants chosen for this
    machine; measured on first use (progress is yielded) and stored in the tuning file. The
    UNet is measured on ``latent``-sized latents, the VAE on half that per side."""
    store = tuning_store(config)
    machine = machine_fingerprint(info.device, torch.get_num_threads())
    # precision is measured eagerly; "on" then compiles the chosen UNet
    variants = candidate_variants(config.with_overrides(compile="off"), info, True, False)
    sample, build = unet_probe(pipe, latent)
    unet = yield from _lookup_or_measure(
        store,
        machine,
        network_key("unet", pipe.unet),
        variants,
        sample,
        build,
        "UNet",
        should_stop,
        UNET_TOLERANCE,
    )
    sample, build = vae_probe(pipe, (latent[0] // 2, latent[1] // 2))
    vae = yield from _lookup_or_measure(
        store,
        machine,
        network_key("vae", pipe.vae),
        variants,
        sample,
        build,
        "VAE",
        should_stop,
        None,
    )
    prepare_pipeline(
        pipe,
        info.device,
        unet.chosen.dtype,
        vae_precision=vae.chosen.dtype,
        compiled=config.compile == "on",
    )
    return SDTuning(unet, vae)


def choose_within(measurements: list[Measurement], tolerance: tuple[float, float]) -> Variant:
    """The fastest variant within ``tolerance`` (mean, max) of the reference (fp32 eager)."""
    ok = [m for m in measurements if m.mean_error <= tolerance[0] and m.max_error <= tolerance[1]]
    return min(ok, key=lambda m: m.seconds).variant if ok else Variant()


def _lookup_or_measure(
    store: TuningStore,
    machine: str,
    model: str,
    variants: list[Variant],
    sample,
    build,
    name: str,
    should_stop: Callable[[], None],
    tolerance: tuple[float, float] | None,
) -> Generator[Progress, None, TuneResult]:
    shape = (int(sample.shape[0]), int(sample.shape[1]))
    label = ",".join(v.label for v in variants)
    key = store.key(machine, model, shape, label)
    if (found := store.get(key)) is not None:
        return found
    if len(variants) == 1:  # nothing to choose between: no measuring
        return TuneResult(variants[0], (), shape)
    yield Progress(0, 1, f"measuring the fastest precision for the {name} here ({label})")
    measurements = measure(
        lambda v: build(v.dtype, v.compiled),
        sample,
        variants,
        should_stop=should_stop,
        repeats=2,
    )
    allowed = [m for m in measurements if m.variant in variants]
    chosen = choose(allowed) if tolerance is None else choose_within(allowed, tolerance)
    result = TuneResult(chosen, tuple(measurements), shape)
    store.put(key, result)
    return result
