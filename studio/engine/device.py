"""Device choice (CUDA, then MPS, then CPU; ``STUDIO_DEVICE`` overrides) and CPU thread policy.

The environment values read here (``STUDIO_DEVICE``, ``STUDIO_THREADS``, ``STUDIO_PRECISION``)
never stop Studio: a value that is not valid gives one warning line on stderr and the default.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch

from studio.errors import StudioError

ENV_DEVICE = "STUDIO_DEVICE"
ENV_THREADS = "STUDIO_THREADS"
ENV_PRECISION = "STUDIO_PRECISION"
PRECISIONS = ("fp32", "bf16")
MAX_THREADS = 1024
DEVICE_TYPES = ("cpu", "cuda", "mps")

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """``studio: warning: message`` on stderr, once per process (not once per job)."""
    if message not in _warned:
        _warned.add(message)
        print(f"studio: warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class DeviceInfo:
    device: torch.device
    name: str
    #: bytes the engine may plan to use for activations on this device
    memory_budget: int
    supports_bf16: bool


def choose_device(override: str | None = None) -> torch.device:
    """The best available device, or the one named by ``override`` / ``$STUDIO_DEVICE``.

    A bad ``override`` raises :class:`StudioError`; a bad ``$STUDIO_DEVICE`` (a typo, or a GPU
    this machine lacks) is one warning and the automatic choice.
    """
    if override and override.strip():
        return _named_device(override.strip().lower(), "device")
    wanted = os.environ.get(ENV_DEVICE, "").strip().lower()
    if wanted:
        try:
            return _named_device(wanted, ENV_DEVICE)
        except StudioError as exc:
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
    threads = _threads_from_env(max(1, cores - 1) if interactive else cores)
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def _threads_from_env(default: int) -> int:
    env = os.environ.get(ENV_THREADS, "").strip()
    if not env:
        return default
    try:
        threads = int(env)
    except ValueError:
        threads = 0
    if 1 <= threads <= MAX_THREADS:
        return threads
    warn_once(
        f"{ENV_THREADS}={env!r} is not a whole number from 1 to {MAX_THREADS}; using {default}"
    )
    return default


def env_precision() -> str:
    """``$STUDIO_PRECISION`` in lower case: "fp32", "bf16", or "" for the automatic choice."""
    env = os.environ.get(ENV_PRECISION, "")
    wanted = env.strip().lower()
    if wanted and wanted not in PRECISIONS:
        warn_once(f"{ENV_PRECISION}={env!r} is not fp32 or bf16; using the automatic choice")
        return ""
    return wanted
