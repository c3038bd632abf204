"""Compositing: visible layers flattened with opacity, straight alpha in and out."""

from __future__ import annotations

import numpy as np

from studio.document import Document, Layer, composite
from studio.geometry import Rect


def test_single_opaque_layer_is_returned_as_is(photo) -> None:
    doc = Document.from_image(photo)
    out = doc.composite()
    np.testing.assert_array_equal(out[:, :, :3], photo)
    assert (out[:, :, 3] == 255).all()


def test_half_opacity_red_over_blue() -> None:
    blue = Layer.from_rgb(np.tile(np.array([0, 0, 255], np.uint8), (4, 4, 1)))
    red = Layer.from_rgb(np.tile(np.array([255, 0, 0], np.uint8), (4, 4, 1)))
    red.opacity = 0.5
    out = composite([blue, red], Rect(0, 0, 4, 4))
    np.testing.assert_allclose(out[0, 0].astype(int), [128, 0, 128, 255], atol=1)


def test_hidden_layers_and_transparency() -> None:
    bottom = Layer.blank(3, 3)
    top = Layer.from_rgb(np.full((3, 3, 3), 200, np.uint8))
    top.visible = False
    out = composite([bottom, top], Rect(0, 0, 3, 3))
    assert (out == 0).all()
    half = np.zeros((3, 3, 4), np.uint8)
    half[..., 0] = 255
    half[..., 3] = 128
    out = composite([Layer(half)], Rect(0, 0, 3, 3))
    np.testing.assert_allclose(out[1, 1].astype(int), [255, 0, 0, 128], atol=1)
