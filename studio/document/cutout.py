"""Cutting a generated picture out of its white background, so it lands on the canvas as a
sticker rather than an opaque white square.

Studio's generators draw emoji on white (their training pictures were flattened onto white), so
the background is the near-white area connected to the picture's border. It becomes
transparent; white enclosed by the drawing (eyes, teeth) stays opaque. The anti-aliased pixels
along the cut are blends of the drawing's colour ``f`` and white: with ``f`` taken from the
nearest pixel inside, ``c = a * f + (1 - a) * 255`` gives their alpha ``a`` and colour, so the
outline keeps no white fringe. Qt-free (numpy and OpenCV).
"""

from __future__ import annotations

import cv2
import numpy as np

#: how far from white (255 minus the darkest channel) a generator's background may stray
BACKGROUND_TOLERANCE = 24
#: the generators' native side: an enlarged picture's blended edge is wider in proportion
NATIVE_SIDE = 64


def cut_out(picture: np.ndarray, tolerance: int = BACKGROUND_TOLERANCE) -> np.ndarray:
    """HxWx3 (or 4) uint8 -> new HxWx4 uint8 with the white background transparent.

    A picture with alpha of its own (some pixel below 255) keeps it as it is.
    """
    if picture.ndim != 3 or picture.shape[2] not in (3, 4) or picture.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 or HxWx4 uint8, got {picture.shape} {picture.dtype}")
    h, w = picture.shape[:2]
    out = np.empty((h, w, 4), np.uint8)
    out[:, :, :3] = picture[:, :, :3]
    if picture.shape[2] == 4 and picture[:, :, 3].min() < 255:
        out[:, :, 3] = picture[:, :, 3]
        return out
    out[:, :, 3] = 255
    rgb = picture[:, :, :3]
    darkness = 255 - rgb.min(axis=2)  # 0 for white
    background = _border_connected(darkness <= tolerance)
    if not background.any():
        return out
    out[background, 3] = 0
    width = max(1, round(max(h, w) / NATIVE_SIDE))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    edge = cv2.dilate(background.astype(np.uint8), kernel).astype(bool) & ~background
    inside = ~background & ~edge
    if edge.any() and inside.any():
        _unblend_edge(out, rgb, edge, inside)
    return out


def _border_connected(candidate: np.ndarray) -> np.ndarray:
    """The pixels of ``candidate`` (HxW bool) 4-connected to the image border."""
    h, w = candidate.shape
    padded = np.ones((h + 2, w + 2), np.uint8)  # a candidate ring joins every border pixel
    padded[1:-1, 1:-1] = candidate
    cv2.floodFill(padded, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 2, 0, 0, 4)
    return padded[1:-1, 1:-1] == 2


def _unblend_edge(out: np.ndarray, rgb: np.ndarray, edge: np.ndarray, inside: np.ndarray) -> None:
    """Alpha and colour of the ``edge`` pixels, as blends of the nearest ``inside`` colour
    over white (written into ``out``)."""
    _, labels = cv2.distanceTransformWithLabels(
        (~inside).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    colour_of_label = np.zeros((int(labels.max()) + 1, 3), np.float32)
    colour_of_label[labels[inside]] = rgb[inside]  # each inside pixel has a label of its own
    fg = colour_of_label[labels[edge]]  # (N, 3): the nearest inside colour of each edge pixel
    c = rgb[edge].astype(np.float32)
    channel = np.argmax(255.0 - fg, axis=1)[:, None]  # the channel farthest from white
    f_far = np.take_along_axis(fg, channel, 1)[:, 0]
    c_far = np.take_along_axis(c, channel, 1)[:, 0]
    alpha = np.clip((255.0 - c_far) / np.maximum(255.0 - f_far, 1.0), 0.0, 1.0)
    colour = 255.0 - (255.0 - c) / np.maximum(alpha, 1 / 255)[:, None]
    out[edge, :3] = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
    out[edge, 3] = np.rint(alpha * 255.0).astype(np.uint8)
