"""What task generators yield to the runner (no job ids: the runner adds them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.geometry import Rect


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of ``stage``; ``elapsed_s`` lets the runner estimate an ETA."""

    done: int
    total: int
    stage: str = ""
    elapsed_s: float | None = None


@dataclass(frozen=True)
class Partial:
    """Output pixels for ``rect`` in an output of ``out_size`` (w, h)."""

    rect: Rect
    pixels: np.ndarray
    out_size: tuple[int, int]
    final: bool = True


@dataclass(frozen=True)
class LoadingModel:
    model_id: str


@dataclass(frozen=True)
class Result:
    """What a task returns (``return Result(...)`` from the generator)."""

    image: np.ndarray
    rect: Rect
    info: dict[str, Any] = field(default_factory=dict)


TaskEvent = Progress | Partial | LoadingModel
