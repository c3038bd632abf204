"""Device choice (CUDA, then MPS, then CPU; ``STUDIO_DEVICE`` overrides) and CPU thread policy."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from studio.errors import StudioError

ENV_DEVICE = "STUDIO_DEVICE"


@dataclass(frozen=True)
class DeviceInfo:
    device: torch.device
    name: str
    #: bytes the engine may plan to use for activations on this device
    memory_budget: int
    supports_bf16: bool


def choose_device(override: str | None = None) -> torch.device:
    """The best available device, or the one named by ``override`` / ``$STUDIO_DEVICE``."""
    wanted = (override or os.environ.get(ENV_DEVICE, "")).strip().lower()
    if wanted:
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise StudioError(f"{ENV_DEVICE}={wanted}: CUDA is not available on this machine")
        if wanted == "mps" and not _mps_available():
            raise StudioError(f"{ENV_DEVICE}=mps: Metal is not available on this machine")
        try:
            return torch.device(wanted)
        except RuntimeError:
            raise StudioError(
                f"{ENV_DEVICE}={wanted}: not a device (use cpu, cuda or mps)"
            ) from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def describe(device: torch.device) -> DeviceInfo:
    """Name and memory budget of ``device`` (CPU: an eighth of RAM, capped at 2 GiB)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        name = torch.cuda.get_device_name(device)
        return DeviceInfo(device, name, int(free * 0.7), torch.cuda.is_bf16_supported())
    if device.type == "mps":
        return DeviceInfo(device, "Apple GPU (MPS)", 4 << 30, False)
    return DeviceInfo(device, f"CPU ({os.cpu_count()} cores)", _cpu_budget(), _cpu_has_bf16())


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


def configure_cpu_threads(interactive: bool) -> int:
    """Set torch's intra-op threads and return the count.

    With a GUI, one core is left to the UI thread so painting stays smooth while a job runs;
    headless (CLI, benchmarks), every core works. ``STUDIO_THREADS`` overrides.
    """
    cores = os.cpu_count() or 1
    env = os.environ.get("STUDIO_THREADS")
    threads = int(env) if env else (max(1, cores - 1) if interactive else cores)
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()
