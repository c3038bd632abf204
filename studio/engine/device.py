"""Device choice (CUDA, then MPS, then CPU, or the one the :class:`EngineConfig` names), the
device's memory budget and the CPU thread count. Nothing here reads the environment: the edge
builds an :class:`~studio.engine.config.EngineConfig` and passes its values in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from studio.engine.config import DEVICE_TYPES, warn_once
from studio.errors import StudioError


@dataclass(frozen=True)
class DeviceInfo:
    device: torch.device
    name: str
    #: bytes the engine may plan to use for activations on this device
    memory_budget: int
    supports_bf16: bool


def choose_device(wanted: str | None = None, *, strict: bool = True) -> torch.device:
    """The device named by ``wanted`` ("cpu", "cuda", "cuda:1", "mps"), else the best available.

    A name this machine cannot use raises :class:`StudioError` when ``strict``; otherwise (a
    value that came from the environment) it is one warning and the automatic choice.
    """
    if wanted and wanted.strip():
        try:
            return _named_device(wanted.strip().lower(), "device")
        except StudioError as exc:
            if strict:
                raise
            warn_once(f"{exc}; using the automatic choice")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _named_device(wanted: str, source: str) -> torch.device:
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise StudioError(f"{source}={wanted}: CUDA is not available on this machine")
    if wanted == "mps" and not _mps_available():
        raise StudioError(f"{source}={wanted}: Metal is not available on this machine")
    try:
        device = torch.device(wanted)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise StudioError(f"{source}={wanted}: not a device (use cpu, cuda or mps)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise StudioError(f"{source}={wanted}: this machine has {count} CUDA device(s)")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def describe(device: torch.device, memory_budget: int | None = None) -> DeviceInfo:
    """Name and memory budget of ``device`` (CPU: an eighth of RAM, capped at 2 GiB; GPU: 70 %
    of free memory); ``memory_budget`` overrides the budget."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        name = torch.cuda.get_device_name(device)
        info = DeviceInfo(device, name, int(free * 0.7), torch.cuda.is_bf16_supported())
    elif device.type == "mps":
        info = DeviceInfo(device, "Apple GPU (MPS)", 4 << 30, False)
    else:
        info = DeviceInfo(device, f"CPU ({os.cpu_count()} cores)", _cpu_budget(), _cpu_has_bf16())
    return replace(info, memory_budget=int(memory_budget)) if memory_budget else info


def _cpu_budget() -> int:
    # Working memory for activations. Tiles beyond ~300 px buy little speed on a CPU, while a
    # smaller budget keeps a 2048 -> 8192 upscale well inside 3 GB.
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(total // 8, 2 << 30))


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def configure_cpu_threads(threads: int) -> int:
    """Set torch's intra-op threads (:attr:`EngineConfig.cpu_threads`) and return the count."""
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()
