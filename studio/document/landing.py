"""Landing a finished task result in a document: each function is one undo step. numpy only.

A task's row in :mod:`studio.engine.task_table` names its landing function; the editor's
controller calls it on Accept, tests call it directly (no Qt, no engine). What lands:

* :func:`land_region`: a result the size of its input region (the request's ``roi`` or the
  whole document): only the pixels the task changed, as a new layer or merged;
* :func:`land_resized`: a result that replaces the picture at a new size (upscale);
* :func:`land_grown`: the canvas grows around the old picture (outpaint);
* :func:`land_new_picture`: a new picture, as a layer at its own size (generate);
* :func:`land_generated`: generate's results: a new picture, or a region (img2img, inpaint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from studio.document.cutout import cut_out
from studio.document.document import Document, changed_bbox
from studio.document.layer import Layer
from studio.geometry import Rect


@dataclass
class Landing:
    """A finished result on its way into a document.

    ``image``: the result, RGB(A) uint8 HxWxC. ``source``: the pixels the job was given (the
    request's image). ``roi``: the region they were taken from (None: the whole document).
    ``info``: what the task reported (outpaint's ``offset``, generate's ``cells`` and the
    artist's ``picked`` cell). ``title``: the task's name as the artist reads it ("Inpaint").
    ``as_new_layer``: a region lands as a new layer, or merged into the active layer.
    """

    image: np.ndarray
    source: np.ndarray
    title: str
    roi: Rect | None = None
    info: dict = field(default_factory=dict)
    as_new_layer: bool = True


LandFn = Callable[[Document, Landing], None]


def land_region(doc: Document, result: Landing) -> None:
    """Only the pixels the task changed land in the input region, as a new layer (transparent
    elsewhere) or merged into the active layer, per ``result.as_new_layer``."""
    image = result.image
    roi = result.roi or doc.bounds
    if image.shape[:2] != (roi.h, roi.w):
        raise ValueError(
            f"{result.title}: result is {image.shape[1]}x{image.shape[0]}, expected {roi.w}x{roi.h}"
        )
    source = result.source
    if source.shape[:2] == (doc.height, doc.width) != image.shape[:2]:
        source = source[roi.slices]  # the whole picture was sent: compare with the region
    rgba = Layer.from_rgb(image[:, :, :4] if image.shape[2] >= 3 else image).pixels
    if source.shape[:2] == image.shape[:2]:
        changed = np.any(image[:, :, :3] != source[:, :, :3], axis=2)
        rgba[:, :, 3] = np.where(changed, rgba[:, :, 3], 0)
    box = changed_bbox(rgba[:, :, 3], np.uint8(0))
    if box.is_empty():
        return
    doc.land_pixels(
        rgba[box.slices],
        Rect(roi.x + box.x, roi.y + box.y, box.w, box.h),
        f"{result.title} result",
        as_new_layer=result.as_new_layer,
    )


def land_resized(doc: Document, result: Landing) -> None:
    """The result replaces the document at its size: one layer, an empty mask of that size."""
    info = result.info
    name = f"{result.title} ×{info.get('scale', 0):g} ({info.get('model', '?')})"
    h, w = result.image.shape[:2]
    layer = Layer.from_rgb(result.image, "Upscaled")
    doc.replace_content([layer], np.zeros((h, w), np.float32), name)


def land_grown(doc: Document, result: Landing) -> None:
    """Every layer and the mask grow (transparent / unmasked margins) to the result's size, the
    old picture at ``info["offset"]``; the new pixels land as a layer of their own on top, so
    the original layers stay editable."""
    left, top = result.info.get("offset", (0, 0))
    image = result.image
    h, w = image.shape[:2]
    inside = Rect(left, top, doc.width, doc.height)

    def grown(layer: Layer) -> Layer:
        pixels = np.zeros((h, w, 4), np.uint8)
        pixels[inside.slices] = layer.pixels
        return Layer(pixels, layer.name, layer.visible, layer.opacity)

    added = Layer.from_rgb(image, result.title)
    source = np.zeros_like(added.pixels)
    source[inside.slices] = Layer.from_rgb(result.source).pixels
    unchanged = np.all(added.pixels[:, :, :3] == source[:, :, :3], axis=2)
    unchanged[:, :] &= source[:, :, 3] > 0
    added.pixels[unchanged, 3] = 0
    mask = np.zeros((h, w), np.float32)
    mask[inside.slices] = doc.mask
    doc.replace_content(
        [*map(grown, doc.layers), added],
        mask,
        f"{result.title} to {w}×{h} ({result.info.get('method', '?')})",
    )


def land_new_picture(doc: Document, result: Landing) -> None:
    """The picked cell of a grid (``info["picked"]``, default the first) lands as a new layer,
    centred on the canvas at its own size, shrunk to fit if it is larger than the document;
    its white background is cut away, and alpha of its own is kept (see
    :mod:`studio.document.cutout`)."""
    cells = result.info.get("cells") or [{"rect": (0, 0, *result.image.shape[1::-1])}]
    picked = min(max(int(result.info.get("picked", 0)), 0), len(cells) - 1)
    x, y, w, h = cells[picked]["rect"]
    pixels = cut_out(result.image[y : y + h, x : x + w])
    fit = min(1.0, doc.width / w, doc.height / h)
    if fit < 1.0:
        from PIL import Image

        w, h = max(1, int(w * fit)), max(1, int(h * fit))
        pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.Resampling.LANCZOS))
    layer = Layer.blank(doc.width, doc.height, f"Generated (seed {cells[picked].get('seed')})")
    ox, oy = (doc.width - w) // 2, (doc.height - h) // 2
    layer.pixels[oy : oy + h, ox : ox + w] = Layer.from_rgb(pixels).pixels
    doc.add_layer(layer, name=layer.name)


def land_generated(doc: Document, result: Landing) -> None:
    """A generated grid lands as a new picture; an img2img or prompted-inpaint result (``info``
    ``lands`` = "region") lands in its region like any other edit."""
    if result.info.get("lands") == "region":
        land_region(doc, result)
    else:
        land_new_picture(doc, result)
