"""Classical resampling (Lanczos, bicubic) through Pillow.

Float images (HxWxC float32 in [0, 1]) go through Pillow's float mode channel by channel and come
back unclamped (Lanczos rings). ``exact_8bit=True`` reproduces Pillow's own 8-bit result, which
rounds and clips between its horizontal and vertical passes; use it when the source is 8-bit and
the result must match what other tools produce.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio import pixels

FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
}
#: input pixels of support on each side when enlarging (Lanczos-3 has 3, bicubic 2)
SUPPORT = {"lanczos": 3, "bicubic": 2, "bilinear": 1, "area": 1}


def resize(
    image: np.ndarray, width: int, height: int, method: str = "lanczos", exact_8bit: bool = False
) -> np.ndarray:
    """Resize every channel of ``image`` to ``width`` x ``height`` with Pillow's filter."""
    if method not in FILTERS:
        raise ValueError(f"unknown resampling method {method!r}")
    if image.shape[:2] == (height, width):
        return image.astype(np.float32, copy=True)
    if exact_8bit and image.shape[2] in (3, 4):
        u8 = pixels.quantize(image, np.uint8)
        mode = "RGB" if image.shape[2] == 3 else "RGBA"
        out = Image.fromarray(u8, mode).resize((width, height), FILTERS[method])
        return pixels.to_unit(np.asarray(out))
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[:, :, i], np.float32), "F").resize(
                (width, height), FILTERS[method]
            )
        )
        for i in range(image.shape[2])
    ]
    return np.stack(channels, axis=2)


def scale_by(
    image: np.ndarray, factor: int, method: str = "lanczos", exact_8bit: bool = False
) -> np.ndarray:
    """Enlarge by an integer factor (the tile function of the classical upscalers)."""
    h, w = image.shape[:2]
    return resize(image, w * factor, h * factor, method, exact_8bit)
