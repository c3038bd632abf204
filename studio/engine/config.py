"""One value with every engine setting, built once at the edge and passed down.

The CLI builds it from its arguments and the environment, the editor from its settings and the
environment; nothing below this module reads ``os.environ``. A bad environment value is one
warning line and the default (it never stops Studio); a bad explicit value is a clear error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from studio.errors import BadInputError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_MODES = ("auto", "on", "off")
DEVICE_TYPES = ("cpu", "cuda", "mps")
MAX_THREADS = 1024

ENV_DEVICE = "STUDIO_DEVICE"
ENV_THREADS = "STUDIO_THREADS"
ENV_PRECISION = "STUDIO_PRECISION"
ENV_COMPILE = "STUDIO_COMPILE"

_warned: set[str] = set()


def warn_once(message: str) -> None:
    """``studio: warning: message`` on stderr, once per process (not once per job)."""
    if message not in _warned:
        _warned.add(message)
        print(f"studio: warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings.

    ``device``: "cpu", "cuda", "cuda:N", "mps", or None for the best available.
    ``threads``: CPU threads for inference; None = every core headless, all but one with a GUI.
    ``precision``: "auto" measures fp32 against bf16 per machine and model (see
    :mod:`studio.engine.autotune`); otherwise that precision where the model allows it.
    ``compile``: "auto" measures eager against torch.compile where a job is big enough to repay
    compiling, "on" always compiles, "off" never does.
    ``memory_budget``: bytes of working memory to plan for; None = from the device.
    ``tuning_file``: where measured choices are remembered (None: measured, not remembered).
    ``compile_cache``: inductor's on-disk cache, so compiling is paid once per machine and shape.
    """

    device: str | None = None
    threads: int | None = None
    interactive: bool = False
    precision: str = "auto"
    compile: str = "auto"
    memory_budget: int | None = None
    tuning_file: Path | None = None
    compile_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInputError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.compile not in COMPILE_MODES:
            raise BadInputError(f"compile must be one of {', '.join(COMPILE_MODES)}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise BadInputError(f"threads must be a whole number from 1 to {MAX_THREADS}")
        if self.memory_budget is not None and self.memory_budget < (16 << 20):
            raise BadInputError("memory budget must be at least 16 MiB")
        if self.device is not None and self.device.split(":")[0] not in DEVICE_TYPES:
            raise BadInputError(f"device must be one of {', '.join(DEVICE_TYPES)}")

    @property
    def cpu_threads(self) -> int:
        """The thread count to use on the CPU under this configuration."""
        if self.threads:
            return self.threads
        cores = os.cpu_count() or 1
        return max(1, cores - 1) if self.interactive else cores

    def with_overrides(self, **changes) -> EngineConfig:
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        interactive: bool = False,
        data_dir: Path | None = None,
    ) -> EngineConfig:
        """Settings from ``STUDIO_DEVICE/THREADS/PRECISION/COMPILE``; bad values warn.

        ``data_dir`` (the user-data folder) holds the tuning file and the compile cache.
        """
        env = os.environ if env is None else env
        return cls(
            device=_device_from(env.get(ENV_DEVICE, "")),
            threads=_threads_from(env.get(ENV_THREADS, ""), interactive),
            interactive=interactive,
            precision=_choice_from(ENV_PRECISION, env.get(ENV_PRECISION, ""), PRECISIONS),
            compile=_compile_from(env.get(ENV_COMPILE, "")),
            tuning_file=data_dir / "tuning.json" if data_dir else None,
            compile_cache=data_dir / "compile-cache" if data_dir else None,
        )


def use_compile_cache(config: EngineConfig) -> None:
    """Point torch.compile's on-disk caches at ``config.compile_cache`` (called at the edge,
    before anything compiles), so compiling a model is paid once per machine and tile shape
    rather than once per process. An explicit ``TORCHINDUCTOR_CACHE_DIR`` is left alone."""
    if config.compile_cache is None or "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return
    try:
        config.compile_cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only profile: inductor's default temporary cache still works
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(config.compile_cache)


def _device_from(text: str) -> str | None:
    wanted = text.strip().lower()
    if not wanted:
        return None
    kind, _, index = wanted.partition(":")
    if kind in DEVICE_TYPES and (not index or (kind == "cuda" and index.isdigit())):
        return wanted
    warn_once(f"{ENV_DEVICE}={text!r}: not a device (use cpu, cuda or mps); using the best one")
    return None


def _threads_from(text: str, interactive: bool) -> int | None:
    if not text.strip():
        return None
    try:
        threads = int(text.strip())
    except ValueError:
        threads = 0
    if 1 <= threads <= MAX_THREADS:
        return threads
    default = EngineConfig(interactive=interactive).cpu_threads
    warn_once(
        f"{ENV_THREADS}={text!r} is not a whole number from 1 to {MAX_THREADS}; using {default}"
    )
    return None


def _choice_from(name: str, text: str, choices: tuple[str, ...]) -> str:
    wanted = text.strip().lower()
    if not wanted:
        return choices[0]
    if wanted in choices:
        return wanted
    warn_once(f"{name}={text!r} is not one of {', '.join(choices)}; using {choices[0]}")
    return choices[0]


def _compile_from(text: str) -> str:
    # the older spelling STUDIO_COMPILE=1 still means "on"
    wanted = text.strip().lower()
    aliases = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}
    return _choice_from(ENV_COMPILE, aliases.get(wanted, wanted), COMPILE_MODES)
