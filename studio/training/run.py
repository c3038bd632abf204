"""Run bookkeeping shared by Studio's training scripts (``train_sr``, ``train_inpaint``,
``train_vae``, ``train_gan``).

A run lives in ``RUNS/<name>/``: ``log.txt`` (appended, one timestamped line per message),
``pid``, ``state.pt`` (the full resumable state, written atomically and read back with
``torch.load(weights_only=True)``) and ``model.safetensors`` (the weights at the last save, also
copied to ``--export``). Saves happen every ``--save-minutes``, when ``--max-minutes`` are up and
on SIGTERM/SIGINT (the signal only sets :attr:`Run.stop`; the training loop ends its step, then
saves). What goes into the state and the exported metadata stays with each script.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from studio.atomic_write import atomic_open, write_bytes_atomic
from studio.paths import data_cache_dir

RUNS = data_cache_dir() / "runs"


def add_run_args(
    ap: argparse.ArgumentParser,
    *,
    data: Path,
    save_minutes: float,
    log_every: int,
    eval_every: int,
    bf16_help: str = "bf16 autocast",
    init_help: str = "warm start from safetensors weights",
    export_help: str = "also export weights here",
) -> None:
    """Add the run options every training script has; the defaults that differ are arguments."""
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", action="store_true", help=bf16_help)
    ap.add_argument("--data", type=Path, default=data)
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--init", type=Path, default=None, help=init_help)
    ap.add_argument("--export", type=Path, default=None, help=export_help)
    ap.add_argument("--save-minutes", type=float, default=save_minutes)
    ap.add_argument("--log-every", type=int, default=log_every)
    ap.add_argument("--eval-every", type=int, default=eval_every, help="0: never")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this")
    ap.add_argument("--threads", type=int, default=1)


def lr_at(step: int, total: int, lr: float, lr_min: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine from ``lr`` to ``lr_min`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t))


def set_lr(lr: float, *opts: torch.optim.Optimizer) -> None:
    """Set the learning rate of every parameter group of ``opts``."""
    for opt in opts:
        for g in opt.param_groups:
            g["lr"] = lr


def export_weights(model: torch.nn.Module, path: Path, meta: dict) -> None:
    """Write ``model``'s state dict (float32, its own key layout) as safetensors, atomically;
    metadata values are stored as ``str(v)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous().float().clone() for k, v in model.state_dict().items()}
    write_bytes_atomic(path, save(sd, metadata={k: str(v) for k, v in meta.items()}))


def save_state(path: Path, state: dict) -> None:
    """Atomic ``torch.save`` (a crash mid-write never destroys the previous state)."""
    with atomic_open(path) as f:
        torch.save(state, f)


def check_config(saved: dict, cfg: dict, keys: tuple[str, ...], where: Path) -> None:
    """Exit if a saved run's config differs from ``cfg`` in one of ``keys`` (the architecture)."""
    for k in keys:
        if saved.get(k) != cfg[k]:
            raise SystemExit(f"{where}: {k}={saved.get(k)} differs from {cfg[k]}; use a new --name")


class Run:
    """Log file, pid file, signal-triggered stop, timed saves and atomic state save of one run."""

    def __init__(
        self,
        folder: Path,
        save_minutes: float = math.inf,
        max_minutes: float | None = None,
        eval_every: int = 0,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.state_file = folder / "state.pt"
        self._log = (folder / "log.txt").open("a")
        (folder / "pid").write_text(f"{os.getpid()}\n")
        self.save_minutes, self.max_minutes, self.eval_every = save_minutes, max_minutes, eval_every
        self.stop = False
        self._old: dict = {}
        self._t_start = self._last_save = time.time()

    @classmethod
    def start(cls, args: argparse.Namespace) -> Run:
        """Set up torch (``--threads``) and open ``RUNS/<name>`` from :func:`add_run_args`
        options (and ``--name``)."""
        torch.set_num_threads(args.threads)
        torch.set_flush_denormal(True)  # denormals slow CPU convolutions down several-fold
        return cls(args.runs / args.name, args.save_minutes, args.max_minutes, args.eval_every)

    def catch_signals(self) -> None:
        """From now on SIGTERM/SIGINT set :attr:`stop` instead of killing the process."""
        for s in (signal.SIGTERM, signal.SIGINT):
            self._old.setdefault(s, signal.signal(s, self._on_signal))

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stop = True

    def log(self, msg: str) -> None:
        """Print ``msg`` with a timestamp and append the same line to ``log.txt``."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def load(self, cfg: dict, keys: tuple[str, ...]) -> dict | None:
        """The saved state (``weights_only=True``), None if there is none; exits if its config
        differs from ``cfg`` in one of ``keys``."""
        if not self.state_file.is_file():
            return None
        st = torch.load(self.state_file, weights_only=True)
        check_config(st["config"], cfg, keys, self.state_file)
        return st

    @staticmethod
    def progress(
        step: int, wall: float, rng: np.random.Generator, cfg: dict, history: list
    ) -> dict:
        """The part of ``state.pt`` common to all scripts (after their model and optimiser
        entries): step, trained seconds, numpy and torch RNG states, config, eval history."""
        return {
            "step": step,
            "wall": wall,
            "rng_numpy": rng.bit_generator.state,
            "rng_torch": torch.get_rng_state(),
            "config": cfg,
            "history": history,
        }

    @staticmethod
    def resume(st: dict, rng: np.random.Generator) -> tuple[int, float, list]:
        """Restore the RNGs saved by :meth:`progress`; returns ``(step, wall, history)``."""
        rng.bit_generator.state = st["rng_numpy"]
        torch.set_rng_state(st["rng_torch"])
        return int(st["step"]), float(st["wall"]), list(st["history"])

    def resume_one(
        self,
        cfg: dict,
        keys: tuple[str, ...],
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        rng: np.random.Generator,
        init: Path | None,
    ) -> tuple[int, float, list]:
        """Start a one-model run (state keys ``model`` and ``optim``): resume from ``state.pt``
        (see :meth:`load`), else warm-start ``model`` from ``init`` safetensors if given.
        Returns ``(step, wall, history)``."""
        if (st := self.load(cfg, keys)) is not None:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optim"])
            step, wall, history = self.resume(st, rng)
            self.log(f"resumed {self.state_file} at step {step} ({wall / 60:.1f} min trained)")
            return step, wall, history
        if init is not None:
            model.load_state_dict(load_file(str(init)), strict=True)
            self.log(f"warm start from {init}")
        return 0, 0.0, []

    def save(self, state: dict, model: torch.nn.Module, meta: dict, export: Path | None) -> None:
        """Write ``state.pt`` atomically, export ``model`` to ``model.safetensors`` (and to
        ``export`` if given) with ``meta``, and log the save."""
        save_state(self.state_file, state)
        export_weights(model, self.folder / "model.safetensors", meta)
        if export is not None:
            export_weights(model, export, meta)
        self.log(f"saved state at step {state['step']}")

    def start_clock(self) -> None:
        """Start timing ``save_minutes`` and ``max_minutes`` (call just before the loop)."""
        self._t_start = self._last_save = time.time()

    def tick(
        self, step: int, evaluate: Callable[[], None] | None, checkpoint: Callable[[], None]
    ) -> bool:
        """After each step: ``evaluate()`` every ``eval_every`` steps (never if 0 or None),
        ``checkpoint()`` if ``save_minutes`` have passed since the last one; True once
        ``max_minutes`` are up (the caller leaves its loop, then calls :meth:`finish`)."""
        if evaluate is not None and self.eval_every and step % self.eval_every == 0:
            evaluate()
        if time.time() - self._last_save > self.save_minutes * 60:
            checkpoint()
            self._last_save = time.time()
        return self.max_minutes is not None and time.time() - self._t_start > self.max_minutes * 60

    def finish(
        self,
        step: int,
        history: list[dict],
        evaluate: Callable[[], None] | None,
        checkpoint: Callable[[], None],
    ) -> None:
        """``evaluate()`` unless None or the last ``history`` entry is at ``step``, the final
        ``checkpoint()``, then :meth:`close`."""
        if evaluate is not None and (not history or history[-1]["step"] != step):
            evaluate()
        checkpoint()
        self.close()

    def close(self) -> None:
        """Restore the signal handlers and close the log."""
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        self._log.close()


class Meter:
    """Sums of per-step values (losses, seconds) since the last log line, and the time taken."""

    def __init__(self, n: int) -> None:
        self.sums, self.count, self._t0 = np.zeros(n), 0, time.time()

    def add(self, *values: float) -> None:
        self.sums += values
        self.count += 1

    def due(self, step: int, every: int, total: int) -> bool:
        """Whether ``step`` gets a log line (every ``every`` steps and at the last one)."""
        return step % every == 0 or step == total

    def elapsed(self) -> float:
        """Seconds since the last :meth:`lap` (or since the meter was made)."""
        return time.time() - self._t0

    def lap(self) -> tuple[np.ndarray, int, float]:
        """``(sums, count, seconds)`` since the last lap, and start a new one."""
        out = self.sums, self.count, self.elapsed()
        self.sums, self.count, self._t0 = np.zeros(len(self.sums)), 0, time.time()
        return out


def loss_line(step: int, sums: np.ndarray, n: int, dt: float, lr: float) -> str:
    """The log line of a one-loss run whose :class:`Meter` sums ``(loss, data seconds)``."""
    return (
        f"step {step} loss {sums[0] / n:.5f} lr {lr:.2e} "
        f"{n / dt:.2f} steps/s (data {100 * sums[1] / dt:.0f}%)"
    )
