"""Landing finished results in a document, without Qt or the engine: each is one undo step."""

from __future__ import annotations

import numpy as np
import pytest

from studio.document import Document, Layer
from studio.document.landing import (
    Landing,
    land_grown,
    land_new_picture,
    land_region,
    land_resized,
)
from studio.geometry import Rect


@pytest.fixture
def doc() -> Document:
    """10x8: an opaque photo, a half-transparent sticker layer above it, a painted mask."""
    rng = np.random.default_rng(0)
    d = Document.from_image(rng.integers(0, 256, (8, 10, 3), np.uint8), "photo")
    sticker = Layer.blank(10, 8, "sticker")
    sticker.pixels[2:5, 3:7] = (200, 10, 10, 128)
    d.add_layer(sticker)
    mask = np.zeros((8, 10), np.float32)
    mask[1:3, 1:4] = 1.0
    d.set_mask(mask, "Paint mask")
    return d


def _state(d: Document) -> tuple:
    return (d.width, d.height, [layer.pixels.copy() for layer in d.layers], d.mask.copy())


def _assert_restored(d: Document, state: tuple) -> None:
    w, h, layers, mask = state
    assert (d.width, d.height) == (w, h)
    assert len(d.layers) == len(layers)
    for layer, pixels in zip(d.layers, layers, strict=True):
        np.testing.assert_array_equal(layer.pixels, pixels)
    np.testing.assert_array_equal(d.mask, mask)


def test_upscale_resizes_every_layer_and_the_mask_as_one_step(doc) -> None:
    before = _state(doc)
    steps = len(doc.history.steps)
    result = np.full((16, 20, 3), 77, np.uint8)
    landing = Landing(result, doc.composite(), "Upscale", info={"scale": 2, "model": "lanczos"})
    land_resized(doc, landing)
    assert (doc.width, doc.height) == (20, 16)
    assert all(layer.pixels.shape == (16, 20, 4) for layer in doc.layers)
    assert doc.mask.shape == (16, 20) and not doc.mask.any(), "the old mask does not fit"
    np.testing.assert_array_equal(doc.composite()[:, :, :3], result)
    assert len(doc.history.steps) == steps + 1
    assert doc.history.undo_name() == "Upscale ×2 (lanczos)"
    doc.undo()
    _assert_restored(doc, before)


def test_outpaint_grows_the_canvas_around_every_layer_and_the_mask(doc) -> None:
    before = _state(doc)
    source = doc.composite()[:, :, :3]
    result = np.full((11, 14, 3), 90, np.uint8)  # 3 px added left, 1 right, 2 top, 1 bottom
    result[2:10, 3:13] = source
    result[5, 5] = (1, 2, 3)  # a pixel inside the old picture that the fill changed
    info = {"offset": (3, 2), "method": "telea"}
    land_grown(doc, Landing(result, source, "Outpaint", info=info))
    assert (doc.width, doc.height) == (14, 11)
    photo, sticker, added = doc.layers
    inside = Rect(3, 2, 10, 8)
    np.testing.assert_array_equal(photo.pixels[inside.slices], before[2][0])
    np.testing.assert_array_equal(sticker.pixels[inside.slices], before[2][1])
    assert photo.pixels[:, :3, 3].max() == 0, "old layers get transparent margins"
    np.testing.assert_array_equal(doc.mask[inside.slices], before[3])
    assert doc.mask.sum() == before[3].sum(), "the margins are not masked"
    assert added.name == "Outpaint"
    assert (added.pixels[:, :3, 3] == 255).all(), "the new margin is opaque in the new layer"
    assert added.pixels[4, 6, 3] == 0, "unchanged old pixels stay transparent there"
    assert tuple(added.pixels[5, 5]) == (1, 2, 3, 255), "a changed old pixel lands"
    np.testing.assert_array_equal(doc.composite()[:, :, :3], result)
    doc.undo()
    _assert_restored(doc, before)


def test_generate_adds_a_layer_at_natural_size_keeping_alpha() -> None:
    d = Document.from_image(np.full((32, 40, 3), 255, np.uint8), "canvas")
    cell = np.zeros((8, 6, 4), np.uint8)
    cell[:, :, :3] = (10, 120, 200)
    cell[:, :, 3] = np.arange(48, dtype=np.uint8).reshape(8, 6) * 5  # alpha of its own
    land_new_picture(d, Landing(cell, np.zeros((1, 1, 3), np.uint8), "Generate"))
    assert len(d.layers) == 2
    layer = d.layers[1]
    ox, oy = (40 - 6) // 2, (32 - 8) // 2
    np.testing.assert_array_equal(layer.pixels[oy : oy + 8, ox : ox + 6], cell)
    outside = layer.pixels.copy()
    outside[oy : oy + 8, ox : ox + 6] = 0
    assert not outside.any(), "nothing lands outside the picture's own size"
    d.undo()
    assert len(d.layers) == 1


def test_generate_lands_the_picked_cell_shrunk_to_fit() -> None:
    d = Document.from_image(np.full((10, 12, 3), 255, np.uint8), "small")
    grid = np.full((20, 40, 3), 255, np.uint8)
    grid[:, 20:, :] = (0, 0, 0)  # cell 1 is black
    cells = [{"rect": (0, 0, 20, 20), "seed": 1}, {"rect": (20, 0, 20, 20), "seed": 2}]
    info = {"cells": cells, "picked": 1}
    land_new_picture(d, Landing(grid, np.zeros((1, 1, 3), np.uint8), "Generate", info=info))
    layer = d.layers[1]
    assert layer.name == "Generated (seed 2)"
    opaque = layer.pixels[:, :, 3] > 0
    ys, xs = np.nonzero(opaque)
    assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (10, 10), "20 px fit to 10"
    assert layer.pixels[opaque, :3].max() <= 2, "the black cell, not the white one"


@pytest.mark.parametrize("as_new_layer", [True, False])
def test_region_replace_lands_only_changed_pixels_as_one_step(doc, as_new_layer) -> None:
    before = _state(doc)
    composite_before = doc.composite()
    steps = len(doc.history.steps)
    roi = Rect(2, 1, 6, 5)
    source = doc.composite(roi)
    result = source[:, :, :3].copy()
    result[1:3, 2:4] = (0, 255, 0)
    landing = Landing(result, source, "Inpaint", roi=roi, as_new_layer=as_new_layer)
    land_region(doc, landing)
    assert len(doc.history.steps) == steps + 1
    assert doc.history.undo_name() == "Inpaint result"
    changed = Rect(roi.x + 2, roi.y + 1, 2, 2)
    assert (doc.composite(changed)[:, :, :3] == (0, 255, 0)).all()
    outside = np.ones((doc.height, doc.width), bool)
    outside[changed.slices] = False
    np.testing.assert_array_equal(doc.composite()[outside], composite_before[outside])
    if as_new_layer:
        assert len(doc.layers) == 3 and doc.layers[2].name == "Inpaint result"
        alpha = doc.layers[2].pixels[:, :, 3]
        assert alpha[changed.slices].min() == 255 and alpha.sum() == 255 * 4
    else:
        assert len(doc.layers) == 2
    doc.undo()
    _assert_restored(doc, before)


def test_region_result_of_the_wrong_size_is_refused(doc) -> None:
    landing = Landing(np.zeros((3, 3, 3), np.uint8), doc.composite(), "Stylize")
    with pytest.raises(ValueError, match="Stylize: result is 3x3, expected 10x8"):
        land_region(doc, landing)
