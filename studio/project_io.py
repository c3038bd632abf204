"""Images and projects behind one door, for the command line (and anything headless).

Reading: an ``.ora`` project reads as its visible layers composited, like a flat image, so a
project from Krita can be upscaled or stylized headless. Writing: an output ending in ``.ora``
becomes a project (the input as the bottom layer, the result as a named layer above it with its
provenance, non-destructive); any other output is an image labelled with what made it
(:mod:`studio.export_metadata`) unless labels are turned off. Qt-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio import imageio
from studio.atomic_write import check_destination
from studio.document import Document, Layer
from studio.document.ora import is_project_path, open_project, save_project
from studio.export_metadata import ExportOptions, labels_from_layers, provenance_of
from studio.imageio import ImageHeader, LoadedImage
from studio.pixels import to_8bit
from studio.task_kind import TaskKind

#: key of ``LoadedImage.metadata`` holding the provenance of a project's layers (bottom first)
PROVENANCE_KEY = "layer_provenance"


def read_input(path: str | os.PathLike[str]) -> LoadedImage:
    """An image file, or a project's visible layers composited (RGB when fully opaque)."""
    if not is_project_path(path):
        return imageio.read_image(path)
    doc = open_project(path).document
    pixels = doc.composite()
    if pixels[:, :, 3].min() == 255:
        pixels = np.ascontiguousarray(pixels[:, :, :3])
    metadata = dict(doc.info.metadata)
    metadata[PROVENANCE_KEY] = [layer.provenance for layer in doc.layers if layer.visible]
    return LoadedImage(pixels, metadata, str(path))


def read_input_header(path: str | os.PathLike[str]) -> ImageHeader:
    """Size and depth before decoding: a project's layers are 8-bit RGBA."""
    if not is_project_path(path):
        return imageio.read_header(path)
    doc = open_project(path, layer_pixels=False).document
    return ImageHeader(doc.width, doc.height, 4, 1, 1, "ORA")


def check_output(path: str | os.PathLike[str]) -> Path:
    """Fail before any work when ``path`` cannot be written (an image or an ``.ora``)."""
    return check_destination(path) if is_project_path(path) else imageio.check_writable(path)


def write_result(
    path: str | os.PathLike[str],
    image: np.ndarray,
    source: LoadedImage | None,
    params: Any,
    *,
    labels: bool = True,
    layer_name: str | None = None,
) -> None:
    """Write a task's result: a project for ``.ora``, else a labelled image."""
    step = provenance_of(params, whole_image=source is None)
    if is_project_path(path):
        save_project(result_project(image, source, step, layer_name), path)
        return
    metadata = dict(source.metadata) if source is not None else {}
    earlier = metadata.pop(PROVENANCE_KEY, [])
    found = labels_from_layers([*earlier, step]) if labels else None
    imageio.write_image(path, image, metadata, ExportOptions(found))


def result_project(
    image: np.ndarray, source: LoadedImage | None, step: dict[str, Any], name: str | None
) -> Document:
    """The input as the bottom layer (placed or resized to the result's size) and the result
    as a layer above it carrying ``step`` as its provenance."""
    result = _rgba8(image)
    h, w = result.shape[:2]
    name = name or f"{step.get('task', 'result').capitalize()} ({step.get('model', 'Studio')})"
    top = Layer(result, name, provenance=step)
    if source is None:
        doc = Document(w, h)
        doc.layers.append(top)
    else:
        doc = Document(w, h)
        stem = Path(source.path).stem if source.path else "Input"
        doc.layers.append(Layer(_fit(_rgba8(source.pixels), w, h, step), stem))
        doc.layers.append(top)
        meta = source.metadata
        doc.info.metadata = {k: meta[k] for k in ("icc_profile", "exif") if meta.get(k)}
    doc.active_index = len(doc.layers) - 1
    return doc


def _fit(pixels: np.ndarray, w: int, h: int, step: dict[str, Any]) -> np.ndarray:
    """The input on the result's canvas: at the outpaint margins, resized for an upscale."""
    if pixels.shape[:2] == (h, w):
        return pixels
    params = step.get("params", {})
    left, top = int(params.get("left", 0) or 0), int(params.get("top", 0) or 0)
    ih, iw = pixels.shape[:2]
    if step.get("task") == TaskKind.OUTPAINT and left + iw <= w and top + ih <= h:
        canvas = np.zeros((h, w, 4), np.uint8)
        canvas[top : top + ih, left : left + iw] = pixels
        return canvas
    resized = Image.fromarray(pixels, "RGBA").resize((w, h), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(resized))


def _rgba8(pixels: np.ndarray) -> np.ndarray:
    pixels = to_8bit(pixels)
    if pixels.shape[2] == 4:
        return np.ascontiguousarray(pixels)
    out = np.empty((*pixels.shape[:2], 4), np.uint8)
    out[:, :, :3] = pixels
    out[:, :, 3] = 255
    return out
