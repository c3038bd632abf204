"""Raster layers and compositing. Pixels are straight-alpha RGBA uint8, HxWx4, C-contiguous."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from studio.geometry import Rect

_layer_ids = itertools.count(1)


def new_layer_id() -> int:
    return next(_layer_ids)


@dataclass(eq=False)
class Layer:
    """One raster layer. ``id`` is stable for the layer's life and is how edits refer to it."""

    pixels: np.ndarray
    name: str = "Layer"
    visible: bool = True
    opacity: float = 1.0
    id: int = field(default_factory=new_layer_id)

    def __post_init__(self) -> None:
        p = self.pixels
        if p.ndim != 3 or p.shape[2] != 4 or p.dtype != np.uint8:
            raise ValueError(f"layer pixels must be HxWx4 uint8, got {p.shape} {p.dtype}")
        if not p.flags.c_contiguous:
            self.pixels = np.ascontiguousarray(p)
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError("layer opacity must be within [0, 1]")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @classmethod
    def blank(cls, width: int, height: int, name: str = "Layer") -> Layer:
        return cls(np.zeros((height, width, 4), np.uint8), name)

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, name: str = "Background") -> Layer:
        """Layer from HxWx3 or HxWx4 uint8 pixels (copied)."""
        return cls(to_rgba(rgb), name)

    def copy(self, name: str | None = None) -> Layer:
        return Layer(self.pixels.copy(), name or self.name, self.visible, self.opacity)


def to_rgba(image: np.ndarray) -> np.ndarray:
    """HxW, HxWx3 or HxWx4 uint8 -> new HxWx4 uint8 (opaque where there was no alpha)."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image.copy())
    if image.shape[2] != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got {image.shape[2]}")
    out = np.empty((*image.shape[:2], 4), np.uint8)
    out[:, :, :3] = image
    out[:, :, 3] = 255
    return out


def composite(layers: Sequence[Layer], rect: Rect) -> np.ndarray:
    """Flatten visible layers (bottom first) over transparency within ``rect``.

    Returns straight-alpha RGBA uint8 of shape (rect.h, rect.w, 4). The common case of one
    fully opaque-visible layer is a plain copy, so opening and painting a photo stays cheap.
    """
    visible = [layer for layer in layers if layer.visible and layer.opacity > 0]
    if not visible:
        return np.zeros((rect.h, rect.w, 4), np.uint8)
    if len(visible) == 1 and visible[0].opacity >= 1.0:
        return visible[0].pixels[rect.slices].copy()
    # Premultiplied 'over' in float32, bottom to top.
    acc_rgb = np.zeros((rect.h, rect.w, 3), np.float32)
    acc_a = np.zeros((rect.h, rect.w, 1), np.float32)
    for layer in visible:
        src = layer.pixels[rect.slices].astype(np.float32) * (1.0 / 255.0)
        a = src[:, :, 3:4] * np.float32(layer.opacity)
        acc_rgb = src[:, :, :3] * a + acc_rgb * (1.0 - a)
        acc_a = a + acc_a * (1.0 - a)
    out = np.zeros((rect.h, rect.w, 4), np.uint8)
    nz = acc_a[:, :, 0] > 0
    rgb = np.divide(acc_rgb, acc_a, out=np.zeros_like(acc_rgb), where=acc_a > 0)
    out[:, :, :3] = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[:, :, 3] = np.clip(acc_a[:, :, 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[~nz, :3] = 0
    return out
