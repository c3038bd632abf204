"""numpy <-> QImage. Conversions copy explicitly: a QImage never aliases engine or document memory.

The canvas keeps ``Format_ARGB32_Premultiplied`` images (the raster engine's fastest format): on a
little-endian machine the bytes are B, G, R, A with colour premultiplied by alpha.
"""

from __future__ import annotations

import sys

import numpy as np
from PySide6.QtGui import QImage

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("Studio's canvas assumes a little-endian machine")


def to_premultiplied_bgra(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA (or RGB) uint8 HxWxC -> premultiplied BGRA uint8 HxWx4."""
    h, w = rgba.shape[:2]
    if rgba.shape[2] == 3:
        out = np.empty((h, w, 4), np.uint8)
        out[:, :, 0] = rgba[:, :, 2]
        out[:, :, 1] = rgba[:, :, 1]
        out[:, :, 2] = rgba[:, :, 0]
        out[:, :, 3] = 255
        return out
    words = np.ascontiguousarray(rgba).view(np.uint32)  # little-endian: A is the top byte
    if h * w == 0 or words.min() >= 0xFF000000:
        # opaque: swap R and B inside each 32-bit word (contiguous, no per-byte striding)
        swapped = words & np.uint32(0xFF00FF00)
        swapped |= (words & np.uint32(0xFF)) << np.uint32(16)
        swapped |= (words >> np.uint32(16)) & np.uint32(0xFF)
        return swapped.view(np.uint8).reshape(h, w, 4)
    out = np.empty((h, w, 4), np.uint8)
    a = rgba[:, :, 3]
    a16 = a.astype(np.uint16)
    for dst, src in ((0, 2), (1, 1), (2, 0)):
        out[:, :, dst] = (rgba[:, :, src] * a16 + 127) // 255
    out[:, :, 3] = a
    return out


def blank_canvas_image(width: int, height: int) -> QImage:
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    return image


def image_view(image: QImage) -> np.ndarray:
    """A writable HxWx4 numpy view of a 32-bit QImage's pixels (valid while ``image`` lives)."""
    ptr = image.bits()
    arr = np.frombuffer(ptr, np.uint8, image.sizeInBytes())
    return arr.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()]


def write_region(image: QImage, x: int, y: int, rgba: np.ndarray) -> None:
    """Copy straight RGBA pixels into a premultiplied canvas image at (x, y)."""
    h, w = rgba.shape[:2]
    image_view(image)[y : y + h, x : x + w] = to_premultiplied_bgra(rgba)


def numpy_to_qimage(rgba: np.ndarray) -> QImage:
    """A new, independent premultiplied QImage holding ``rgba`` (RGB or RGBA uint8)."""
    h, w = rgba.shape[:2]
    image = blank_canvas_image(w, h)
    write_region(image, 0, 0, rgba)
    return image


def qimage_to_numpy(image: QImage) -> np.ndarray:
    """Straight-alpha RGBA uint8 copy of any QImage."""
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    ptr = converted.constBits()
    arr = np.frombuffer(ptr, np.uint8, converted.sizeInBytes())
    arr = arr.reshape(converted.height(), converted.bytesPerLine() // 4, 4)
    return arr[:, : converted.width()].copy()
