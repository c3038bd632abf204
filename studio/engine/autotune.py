"""The fastest way to run a model on this machine, found by measuring it once and remembered.

Machines differ: a 2048² bf16 matmul ran at half the fp32 rate on one CPU of ours and at 2.5-5x
on others (AVX-512 BF16, AMX). So no precision or compile mode is fixed in code. On first use
of a model with a tile shape on a machine, each candidate :class:`Variant` runs one tile (after
a warm-up run); the fastest whose output stays within :data:`TOLERANCE` of fp32 eager wins. The
choice is stored per (machine fingerprint, model, tile shape) in a JSON file in the user-data
folder, so the measuring is paid once per machine, model and shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from studio.atomic_write import write_text_atomic

#: (mean, max) absolute difference from fp32 eager, in 0..1 units, that a variant may show
TOLERANCE = (0.5 / 255, 8 / 255)
STORE_VERSION = 1


@dataclass(frozen=True)
class Variant:
    """One way to run a model: weights and activations in ``dtype``, eager or torch.compile."""

    dtype: str = "fp32"  # fp32 | bf16 | fp16
    compiled: bool = False

    @property
    def torch_dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.dtype]

    @property
    def label(self) -> str:
        return f"{self.dtype} {'compiled' if self.compiled else 'eager'}"

    @staticmethod
    def of(dtype: torch.dtype, compiled: bool = False) -> Variant:
        names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        return Variant(names[dtype], compiled)


FP32_EAGER = Variant()


@dataclass(frozen=True)
class Measurement:
    """Seconds for one tile (best of the timed runs) and the output's distance from fp32."""

    variant: Variant
    seconds: float
    mean_error: float
    max_error: float

    @property
    def within_tolerance(self) -> bool:
        return self.mean_error <= TOLERANCE[0] and self.max_error <= TOLERANCE[1]


@dataclass(frozen=True)
class TuneResult:
    """What was chosen and why, for the panel and ``studio models info``."""

    chosen: Variant
    measurements: tuple[Measurement, ...]
    tile_shape: tuple[int, int]

    @property
    def speedup(self) -> float:
        """How much faster the chosen variant ran than fp32 eager (1.0 when not measured)."""
        by = {m.variant: m.seconds for m in self.measurements}
        base, best = by.get(FP32_EAGER), by.get(self.chosen)
        return base / best if base and best else 1.0

    def summary(self) -> str:
        h, w = self.tile_shape
        return f"{self.chosen.label} ({self.speedup:.1f}x fp32 eager on a {w}x{h} tile)"

    def to_json(self) -> dict:
        return {
            "chosen": asdict(self.chosen),
            "tile_shape": list(self.tile_shape),
            "measurements": [
                {
                    **asdict(m.variant),
                    "seconds": m.seconds,
                    "mean": m.mean_error,
                    "max": m.max_error,
                }
                for m in self.measurements
            ],
        }

    @staticmethod
    def from_json(data: dict) -> TuneResult:
        ms = tuple(
            Measurement(
                Variant(str(m["dtype"]), bool(m["compiled"])),
                float(m["seconds"]),
                float(m["mean"]),
                float(m["max"]),
            )
            for m in data["measurements"]
        )
        chosen = Variant(str(data["chosen"]["dtype"]), bool(data["chosen"]["compiled"]))
        return TuneResult(chosen, ms, (int(data["tile_shape"][0]), int(data["tile_shape"][1])))


def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """The CPU's model name and the instruction-set flags that decide kernel speed."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
    return name, frozenset(f for f in flags if f in wanted)


def machine_fingerprint(device: torch.device, threads: int) -> str:
    """A short key for 'this machine, this torch, this thread count, this device'."""
    if device.type == "cuda":
        hw = torch.cuda.get_device_name(device)
    else:
        name, flags = cpu_model_and_flags()
        hw = name + " " + " ".join(sorted(flags))
    text = f"{device.type}|{hw}|torch {torch.__version__}|threads {threads}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def measure(
    build: Callable[[Variant], Callable[[np.ndarray], np.ndarray]],
    tile: np.ndarray,
    variants: Sequence[Variant],
    repeats: int = 1,
    should_stop: Callable[[], None] | None = None,
) -> list[Measurement]:
    """Run ``tile`` through each variant (one warm-up, then ``repeats`` timed runs).

    ``build(variant)`` returns a callable HxWxC float32 -> float32; fp32 eager is always measured
    first, as the reference. A variant that fails to build or run is left out.
    ``should_stop`` is called between runs (the engine's cancel check).
    """
    order = [FP32_EAGER, *(v for v in variants if v != FP32_EAGER)]
    reference: np.ndarray | None = None
    out: list[Measurement] = []
    for variant in order:
        if should_stop:
            should_stop()
        try:
            fn = build(variant)
            result = fn(tile)  # warm-up: oneDNN primitive creation, compilation
            best = math.inf
            for _ in range(max(1, repeats)):
                if should_stop:
                    should_stop()
                started = time.perf_counter()
                result = fn(tile)
                best = min(best, time.perf_counter() - started)
        except Exception:
            if variant == FP32_EAGER:
                raise
            continue
        if reference is None:
            reference = result
        if result.shape != reference.shape or not np.isfinite(result).all():
            continue
        diff = np.abs(result.astype(np.float32) - reference)
        out.append(Measurement(variant, best, float(diff.mean()), float(diff.max())))
    return out


def choose(measurements: Iterable[Measurement]) -> Variant:
    """The fastest variant within tolerance of fp32 eager (fp32 eager when nothing beats it)."""
    ok = [m for m in measurements if m.within_tolerance]
    return min(ok, key=lambda m: m.seconds).variant if ok else FP32_EAGER


class TuningStore:
    """Choices remembered in one JSON file; unreadable files are treated as empty. Without a
    path the choices live in memory, for the life of the store."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict = {}

    def _read(self) -> dict:
        if self.path is None:
            return dict(self._memory)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    @staticmethod
    def key(machine: str, model: str, tile_shape: tuple[int, int], candidates: str) -> str:
        return f"{machine}|{model}|{tile_shape[0]}x{tile_shape[1]}|{candidates}"

    def get(self, key: str) -> TuneResult | None:
        entry = self._read().get(key)
        try:
            return TuneResult.from_json(entry) if isinstance(entry, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    def results_for(self, machine: str, model: str) -> list[TuneResult]:
        prefix = f"{machine}|{model}|"
        out = []
        for k, v in self._read().items():
            if k.startswith(prefix):
                try:
                    out.append(TuneResult.from_json(v))
                except (KeyError, TypeError, ValueError):
                    continue
        return out

    def put(self, key: str, result: TuneResult) -> None:
        entries = self._read()
        entries[key] = result.to_json()
        if self.path is None:
            self._memory = entries
            return
        payload = json.dumps({"version": STORE_VERSION, "entries": entries}, indent=1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, payload)
        except OSError:
            pass  # a read-only profile only costs a re-measure next time
