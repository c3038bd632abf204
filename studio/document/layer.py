"""Raster layers and compositing. Pixels are straight-alpha RGBA uint8, HxWx4, C-contiguous."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.geometry import Rect
from studio.pixels import quantize

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
    #: what made the pixels (model, parameters, seed, prompt) when an engine result landed here;
    #: saved in projects and written as export metadata. None for painted or opened layers.
    provenance: dict[str, Any] | None = None

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
        provenance = dict(self.provenance) if self.provenance else None
        return Layer(
            self.pixels.copy(), name or self.name, self.visible, self.opacity, provenance=provenance
        )


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


def over(dst: np.ndarray, src: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """Straight-alpha RGBA uint8 ``src`` (times ``opacity``) composited over ``dst``: new array."""
    h, w = dst.shape[:2]
    top = Layer(np.ascontiguousarray(src), opacity=float(opacity))
    return composite([Layer(np.ascontiguousarray(dst)), top], Rect(0, 0, w, h))


#: above this many pixels, composite works in bands of rows (bounded temporaries, cache-friendly)
_BAND_PIXELS = 1 << 20


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
    if rect.area > _BAND_PIXELS:
        out = np.empty((rect.h, rect.w, 4), np.uint8)
        band = max(1, _BAND_PIXELS // max(rect.w, 1))
        for y in range(0, rect.h, band):
            part = Rect(rect.x, rect.y + y, rect.w, min(band, rect.h - y))
            out[y : y + part.h] = _blend(visible, part)
        return out
    return _blend(visible, rect)


def _alpha_words(pixels: np.ndarray, rect: Rect) -> np.ndarray:
    """RGBA pixels of ``rect`` as little-endian uint32 words: alpha is the top byte (fast scans)."""
    return pixels[rect.slices].view(np.uint32)


def _blend(visible: Sequence[Layer], rect: Rect) -> np.ndarray:
    present = [layer for layer in visible if _alpha_words(layer.pixels, rect).max() >= 1 << 24]
    if not present:
        return np.zeros((rect.h, rect.w, 4), np.uint8)
    if len(present) == 1 and present[0].opacity >= 1.0:
        return present[0].pixels[rect.slices].copy()
    base = present[0]
    if base.opacity >= 1.0 and _alpha_words(base.pixels, rect).min() >= 0xFF000000:
        return _over_opaque(base.pixels[rect.slices], present[1:], rect)
    # Premultiplied 'over' in float32, bottom to top.
    acc_rgb = np.zeros((rect.h, rect.w, 3), np.float32)
    acc_a = np.zeros((rect.h, rect.w, 1), np.float32)
    for layer in present:
        src = layer.pixels[rect.slices].astype(np.float32) * (1.0 / 255.0)
        a = src[:, :, 3:4] * np.float32(layer.opacity)
        acc_rgb = src[:, :, :3] * a + acc_rgb * (1.0 - a)
        acc_a = a + acc_a * (1.0 - a)
    out = np.zeros((rect.h, rect.w, 4), np.uint8)
    nz = acc_a[:, :, 0] > 0
    rgb = np.divide(acc_rgb, acc_a, out=np.zeros_like(acc_rgb), where=acc_a > 0)
    out[:, :, :3] = quantize(rgb, np.uint8)
    out[:, :, 3] = quantize(acc_a[:, :, 0], np.uint8)
    out[~nz, :3] = 0
    return out


def _over_opaque(base: np.ndarray, layers: Sequence[Layer], rect: Rect) -> np.ndarray:
    """Layers over an opaque base in integer arithmetic (the result stays opaque)."""
    acc = base[:, :, :3].astype(np.uint32)
    for layer in layers:
        src = layer.pixels[rect.slices]
        a = src[:, :, 3].astype(np.uint32)
        if layer.opacity < 1.0:
            a = (a * round(layer.opacity * 255) + 127) // 255
        a = a[:, :, None]
        acc = (acc * (255 - a) + src[:, :, :3] * a + 127) // 255
    out = np.empty((rect.h, rect.w, 4), np.uint8)
    out[:, :, :3] = acc
    out[:, :, 3] = 255
    return out
