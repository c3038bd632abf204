"""Pixel conversions used everywhere: integer pixels to unit floats and back, 16 -> 8 bit, checks.

numpy only (the document layer may import it). One convention: uint8 or uint16 HxWxC outside,
float32 in [0, 1] inside. Quantising rounds to the nearest level (``floor(x * max + 0.5)``,
clipped), so a value survives ``quantize(to_unit(a))`` unchanged and 16 -> 8 bit maps 65535 to
255 and 32896 (= 128 * 257) to 128 instead of truncating to 127.
"""

from __future__ import annotations

import numpy as np

from studio.errors import BadInputError

PIXEL_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def max_value(dtype: np.dtype | type) -> float:
    """The value of full intensity: 255 for uint8, 65535 for uint16, 1.0 for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind == "u" else 1.0


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 (or float, taken as already in [0, 1]) -> float32 in [0, 1], same shape.

    One pass and one allocation; equal bit for bit to ``pixels.astype(float32) / max``.
    """
    if pixels.dtype.kind == "f":
        return pixels.astype(np.float32, copy=False)
    if pixels.dtype not in PIXEL_DTYPES:
        raise BadInputError(f"expected 8- or 16-bit pixels, got {pixels.dtype}")
    return np.divide(pixels, np.float32(max_value(pixels.dtype)), dtype=np.float32)


def quantize(x: np.ndarray, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """float in [0, 1] -> ``dtype`` (uint8/uint16), rounded to the nearest level and clipped."""
    top = max_value(dtype)
    work = np.result_type(x, np.float32)  # float64 input keeps float64 rounding
    y = np.multiply(x, top, dtype=work)
    y += 0.5
    np.clip(y, 0.0, top, out=y)
    return y.astype(dtype)


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 rounded to the nearest level (uint8 is returned as it is)."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype != np.uint16:
        raise BadInputError(f"expected 8- or 16-bit pixels, got {pixels.dtype}")
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def check_image(pixels: np.ndarray, what: str = "image") -> None:
    """One clear :class:`BadInputError` unless ``pixels`` is HxWx3 or HxWx4 uint8/uint16."""
    if not isinstance(pixels, np.ndarray):
        raise BadInputError(f"expected the {what} as pixels, got {type(pixels).__name__}")
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise BadInputError(f"expected an RGB or RGBA {what}, got shape {pixels.shape}")
    if pixels.dtype not in PIXEL_DTYPES:
        raise BadInputError(f"expected 8- or 16-bit pixels in the {what}, got {pixels.dtype}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise BadInputError(f"the {what} is empty ({pixels.shape[1]}x{pixels.shape[0]})")
