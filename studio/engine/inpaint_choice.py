"""Which fill suits which hole, and the fillers of the learned methods built on studio-inpaint.

studio-inpaint (the network) is best on thin strokes and small blemishes: its fill continues the
surroundings smoothly and scores the highest PSNR there. On object-sized holes the same network
returns a flat smudge, and the hybrid (:mod:`studio.models.hybrid_inpaint`: the network's
structure plus PatchMatch texture) looks real. ``auto`` decides per connected part of the hole:
a part is *object-sized* when some pixel in it lies at least :data:`OBJECT_RADIUS` px from the
nearest known pixel (the part is that thick somewhere, not just long), so a long thin stroke
stays with the network however much of the picture it covers.

The threshold comes from the evaluation masks on 256 px crops (``studio.training.eval_inpaint``):
the parts of the stroke masks have inscribed radii of 20 px (median), 36 px (95th percentile)
and at most 50 px; those of the object masks (20-35 % of the crop) at least 43.6 px. At 48 px,
1 of the 93 stroke-mask parts (0.9 % of their area) and 39 of the 40 objects go to the hybrid;
measured on those crops, ``auto`` is then +1.50 dB over Telea on strokes (the flip-averaged
network's own score; at 40 px it was +1.45) and +1.02 dB with texture ratio 0.75 on objects
(the hybrid's search with 6/3 iterations; +0.94 dB and 0.84 with the earlier 4/2).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from studio.models.hybrid_inpaint import hybrid_inpaint

#: (image HxWx3 float32 [0,1], hole HxW float32 {0,1}) -> filled HxWx3 float32
Filler = Callable[[np.ndarray, np.ndarray], np.ndarray]

AUTO = "auto"
NETWORK = "studio-inpaint"
HYBRID = "studio-inpaint-hybrid"
#: a hole part at least this thick (px from its inside to the nearest known pixel) is an object
OBJECT_RADIUS = 48
#: the hybrid runs the network on at most this many px per side (see :func:`network_fill_at`)
NET_SIDE = 512


def object_parts(hole: np.ndarray, radius: float = OBJECT_RADIUS) -> np.ndarray:
    """Bool HxW: the connected parts of ``hole`` (> 0.5) that are object-sized.

    A part is object-sized when its largest inscribed disc has a radius >= ``radius`` px.
    Pure: depends on the mask's pixels only.
    """
    binary = (hole > 0.5).astype(np.uint8)
    if not binary.any():
        return np.zeros(binary.shape, bool)
    # distance to the nearest known pixel (the image border is not a known pixel)
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    count, labels = cv2.connectedComponents(binary, connectivity=8)
    thickest = np.zeros(count, np.float32)
    np.maximum.at(thickest, labels.ravel(), dist.ravel())
    large = thickest >= radius
    large[0] = False
    return large[labels]


def choose_method(mask: np.ndarray, radius: float = OBJECT_RADIUS) -> str:
    """The method ``auto`` uses for ``mask`` (HxW, > 0.5 = fill) as a whole: the hybrid when any
    part of it is object-sized, the network otherwise (thin strokes, small blemishes).

    ``auto`` itself decides per part (see :func:`auto_filler`); this is the answer for a panel
    or a command line that wants to show or log the choice.
    """
    return HYBRID if object_parts(mask, radius).any() else NETWORK


def network_fill_at(network: Filler, image: np.ndarray, hole: np.ndarray, side: int) -> np.ndarray:
    """The network's fill computed on a copy no larger than ``side`` px, brought back to size.

    The hybrid takes only the network's low frequencies (its texture comes from the photo), so
    a 1024 px region is filled at 512 px: a quarter of the network's time, the largest part of
    the hybrid's. Known pixels come back exact.
    """
    h, w = hole.shape
    scale = side / max(h, w)
    if scale >= 1.0:
        return network(image, hole)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    filled = network(small, small_hole.astype(np.float32))
    big = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    out = image.astype(np.float32, copy=True)
    inside = hole > 0.5
    out[inside] = np.clip(big[inside], 0.0, 1.0)
    return out


def hybrid_filler(network: Filler, seed: int = 0, net_side: int = NET_SIDE) -> Filler:
    """The hybrid fill: the network's fill (at most ``net_side`` px) guides PatchMatch."""

    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        coarse = network_fill_at(network, image, hole, net_side)
        if (hole > 0.5).all():  # nothing to copy texture from: the network's fill it is
            return coarse
        return hybrid_inpaint(image, hole, coarse, seed=seed)

    return fill


def auto_filler(
    network: Filler,
    quick: Filler | None = None,
    seed: int = 0,
    radius: float = OBJECT_RADIUS,
) -> Filler:
    """Per crop: ``network`` (as shipped, flip-averaged) when the hole has no object-sized part;
    otherwise the hybrid, built on ``quick`` (a single-pass network, default ``network``),
    whose fill is kept on the thin parts and replaced by the textured one on the large."""
    hybrid_network = quick or network

    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        large = object_parts(hole, radius)
        if not large.any() or (hole > 0.5).all():
            return network(image, hole)
        coarse = network_fill_at(hybrid_network, image, hole, NET_SIDE)
        textured = hybrid_inpaint(image, hole, coarse, seed=seed)
        out = coarse
        out[large] = textured[large]
        return out

    return fill
