"""Layer operations as single undo steps, result landing, revisions, the saved state, limits."""

from __future__ import annotations

import numpy as np
import pytest

from studio.document import MASK, Document, Layer, composite, over
from studio.geometry import Rect


@pytest.fixture
def doc(photo) -> Document:
    return Document.from_image(photo)


def red_layer(doc: Document, opacity: float = 1.0) -> Layer:
    layer = Layer.blank(doc.width, doc.height, "Red")
    layer.pixels[10:30, 20:60] = (255, 0, 0, 200)
    layer.opacity = opacity
    return doc.add_layer(layer)


def test_duplicate_rename_and_active(doc: Document) -> None:
    copy = doc.duplicate_layer(doc.layers[0].id)
    assert [lay.name for lay in doc.layers] == ["Background", "Background copy"]
    assert doc.active_layer is copy and copy.pixels is not doc.layers[0].pixels
    np.testing.assert_array_equal(copy.pixels, doc.layers[0].pixels)
    seen = []
    doc.subscribe(lambda c: seen.append(c.kind))
    doc.rename_layer(copy.id, "  Sky ")
    assert copy.name == "Sky" and "layer_name" in seen and "layers" not in seen
    doc.rename_layer(copy.id, "   ")  # empty: ignored
    doc.set_active(0)
    assert doc.active_index == 0 and seen[-1] == "active"
    assert [s.name for s in doc.history.steps] == ["Duplicate Background", "Rename layer"]
    doc.undo()
    assert copy.name == "Background copy"
    doc.undo()
    assert len(doc.layers) == 1


@pytest.mark.parametrize("opacity", [1.0, 0.4])
def test_merge_down_equals_the_composite(doc: Document, opacity: float) -> None:
    red = red_layer(doc, opacity)
    expected = composite(doc.layers, doc.bounds)
    before = doc.layers[0].pixels.copy()
    lower = doc.merge_down(red.id)
    assert len(doc.layers) == 1 and doc.active_layer is lower and lower.opacity == 1.0
    np.testing.assert_allclose(lower.pixels.astype(int), expected.astype(int), atol=1)
    step = doc.history.current_step()
    assert step.name == "Merge Red down" and step.nbytes <= 2 * 40 * 20 * 4 + red.pixels.nbytes
    doc.undo()
    np.testing.assert_array_equal(doc.layers[0].pixels, before)
    assert doc.layers[1] is red
    doc.redo()
    np.testing.assert_allclose(doc.layers[0].pixels.astype(int), expected.astype(int), atol=1)


def test_merging_a_hidden_layer_drops_it_and_the_bottom_cannot_merge(doc: Document) -> None:
    red = red_layer(doc)
    doc.set_layer_props(red.id, visible=False)
    before = doc.layers[0].pixels.copy()
    doc.merge_down(red.id)
    np.testing.assert_array_equal(doc.layers[0].pixels, before)
    with pytest.raises(ValueError, match="bottom layer"):
        doc.merge_down(doc.layers[0].id)


def test_set_layer_props_with_a_live_preview_is_one_step(doc: Document) -> None:
    red = red_layer(doc)
    for value in (0.8, 0.5, 0.3):
        doc.preview_layer_props(red.id, opacity=value)
    doc.set_layer_props(red.id, "Layer opacity", before={"opacity": 1.0}, opacity=0.3)
    assert doc.history.position == 2 and red.opacity == 0.3
    doc.undo()
    assert red.opacity == 1.0
    with pytest.raises(ValueError):
        doc.set_layer_props(red.id, opacity=1.5)


def test_land_pixels_as_layer_or_merged(doc: Document, photo) -> None:
    patch = np.zeros((10, 20, 4), np.uint8)
    patch[..., 1] = 255
    patch[..., 3] = 255
    patch[:, :5, 3] = 0  # partly transparent result
    layer = doc.land_pixels(patch, Rect(100, 90, 20, 10), "Result", as_new_layer=True)
    assert layer is doc.layers[1] and layer.name == "Result"
    assert (layer.pixels[90:96, 105:120] == (0, 255, 0, 255)).all()
    assert layer.pixels[:, :100, 3].max() == 0, "transparent outside the result"
    doc.undo()
    assert doc.land_pixels(patch, Rect(100, 90, 20, 10), "Result", as_new_layer=False) is None
    px = doc.layers[0].pixels
    assert (px[90:96, 105:120, :3] == (0, 255, 0)).all()
    np.testing.assert_array_equal(px[90:96, 100:105, :3], photo[90:96, 100:105])
    assert doc.history.current_step().nbytes == 2 * 4 * 6 * 20, "clipped to the image"


def test_changed_since_tracks_each_target(doc: Document) -> None:
    rev = doc.revision
    layer_id = doc.layers[0].id
    assert not doc.changed_since(layer_id, rev) and not doc.changed_since(MASK, rev)
    doc.apply_pixels(MASK, Rect(0, 0, 2, 2), np.ones((2, 2), np.float32), "m")
    assert doc.changed_since(MASK, rev) and not doc.changed_since(layer_id, rev)
    doc.apply_pixels(layer_id, Rect(0, 0, 1, 1), np.zeros((1, 1, 4), np.uint8), "p")
    assert doc.changed_since(layer_id, rev)
    assert doc.changed_since(12345678, rev), "a layer that is gone counts as changed"


def test_modified_follows_the_history(doc: Document) -> None:
    assert not doc.is_modified
    doc.fill_mask(1.0, "Select all")
    assert doc.is_modified
    doc.mark_clean()
    assert not doc.is_modified
    doc.undo()
    assert doc.is_modified
    doc.redo()
    assert not doc.is_modified


def test_mask_fill_and_invert_hold_only_old_pixels(doc: Document) -> None:
    step = doc.fill_mask(1.0, "Select all")
    assert step.nbytes == doc.mask.nbytes
    assert doc.fill_mask(1.0, "Select all") is None
    doc.mask[0, 0] = 0.25
    doc.invert_mask()
    assert doc.mask[0, 0] == 0.75 and doc.mask[5, 5] == 0.0
    doc.undo()
    assert doc.mask[0, 0] == 0.25 and doc.mask[5, 5] == 1.0


def test_over_is_straight_alpha_source_over() -> None:
    dst = np.array([[[0, 0, 255, 255]]], np.uint8)
    src = np.array([[[255, 0, 0, 128]]], np.uint8)
    np.testing.assert_allclose(over(dst, src)[0, 0].astype(int), [128, 0, 127, 255], atol=1)


def test_size_limits() -> None:
    with pytest.raises(ValueError, match="positive"):
        Document(0, 5)
    with pytest.raises(ValueError, match=r"20000x20000 is 400 megapixels.*16384x16384"):
        Document(20000, 20000)
    one = Document.from_image(np.array([[[1, 2, 3]]], np.uint8))
    assert one.composite().shape == (1, 1, 4)


def test_large_composites_are_banded_and_equal(doc: Document) -> None:
    big = Document.from_image(np.zeros((1100, 1000, 3), np.uint8))
    layer = Layer.blank(1000, 1100)
    layer.pixels[::3, ::7] = (10, 200, 30, 99)
    layer.opacity = 0.7
    big.add_layer(layer)
    whole = big.composite()
    for y in (0, 500, 1099):
        np.testing.assert_array_equal(big.composite(Rect(0, y, 1000, 1)), whole[y : y + 1])


def test_layer_changes_report_only_the_footprint_that_can_change(doc: Document) -> None:
    """The canvas recomposites only these rects, so they must cover every composite change."""
    rects: list[Rect | None] = []
    doc.subscribe(lambda c: rects.append(c.rect) if c.kind == "layers" else None)
    empty = doc.add_layer(Layer.blank(doc.width, doc.height, "Empty"))
    assert rects[-1].is_empty(), "an empty layer changes nothing"
    red = red_layer(doc)
    box = Rect(20, 10, 40, 20)
    assert rects[-1] == box
    doc.set_layer_props(red.id, visible=False)
    assert rects[-1] == box
    doc.set_layer_props(red.id, opacity=0.5)  # hidden: its opacity changes nothing on screen
    assert rects[-1].is_empty()
    doc.move_layer(doc.index_of(red.id), 0)
    assert rects[-1] == box
    doc.remove_layer(empty.id)
    assert rects[-1].is_empty()
    doc.undo()
    doc.move_layer(1, 0)  # the opaque photo: its footprint is everything
    assert rects[-1] == doc.bounds
    # and outside the reported rects the composite never changed
    before = doc.composite()
    doc.set_layer_props(red.id, visible=True)
    after = doc.composite()
    outside = np.ones(before.shape[:2], bool)
    outside[rects[-1].slices] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    assert not np.array_equal(after[box.slices], before[box.slices])
