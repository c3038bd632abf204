"""Undo history: strokes as steps, exact restoration, byte budget, memory ∝ touched area."""

from __future__ import annotations

import numpy as np
import pytest

from studio.document import MASK, BrushSettings, Document, Layer, Stroke
from studio.geometry import Rect


def paint(doc: Document, points, color=(255, 0, 0), size=12.0, target=None) -> None:
    stroke = Stroke(
        doc,
        doc.active_layer.id if target is None else target,
        BrushSettings(size=size, color=color),
        "Brush",
    )
    stroke.move_to(*points[0])
    for p in points[1:]:
        stroke.line_to(*p)
    stroke.end()


@pytest.fixture
def doc(photo) -> Document:
    return Document.from_image(photo)


def test_undo_redo_of_several_strokes_restores_pixels_exactly(doc: Document) -> None:
    states = [doc.active_layer.pixels.copy()]
    for i, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        paint(doc, [(5 + 10 * i, 5), (100, 80 - 10 * i), (120, 10)], color)
        states.append(doc.active_layer.pixels.copy())
    assert doc.history.position == 3
    for expected in reversed(states[:-1]):
        doc.undo()
        np.testing.assert_array_equal(doc.active_layer.pixels, expected)
    assert not doc.history.can_undo()
    for expected in states[1:]:
        doc.redo()
        np.testing.assert_array_equal(doc.active_layer.pixels, expected)


def test_one_stroke_is_one_step_and_new_edit_clears_redo(doc: Document) -> None:
    paint(doc, [(0, 0), (50, 50), (90, 10), (120, 90)])
    paint(doc, [(10, 90), (60, 5)])
    assert [s.name for s in doc.history.steps] == ["Brush", "Brush"]
    doc.undo()
    assert doc.history.can_redo()
    paint(doc, [(30, 30), (40, 40)])
    assert not doc.history.can_redo()
    assert doc.history.position == 2


def test_budget_drops_the_oldest_steps(photo) -> None:
    doc = Document.from_image(photo, history_budget=200_000)
    for i in range(10):
        paint(doc, [(0, 8 * i), (127, 8 * i)], size=10)
    assert doc.history.nbytes <= 200_000
    assert doc.history.dropped > 0
    assert doc.history.position == 10 - doc.history.dropped
    # the kept steps still undo correctly down to the oldest kept state
    while doc.history.can_undo():
        doc.undo()
    assert not np.array_equal(doc.active_layer.pixels, photo)  # dropped strokes stay painted


def test_undo_memory_follows_touched_area_not_image_size() -> None:
    small = Document.from_image(np.zeros((256, 256, 3), np.uint8))
    large = Document.from_image(np.zeros((4096, 4096, 3), np.uint8))
    for d in (small, large):
        paint(d, [(20, 20), (200, 30)], size=10)
    assert small.history.nbytes == large.history.nbytes
    assert large.history.nbytes < 4096 * 4096 * 4 / 100


def test_mask_strokes_and_mask_erase(doc: Document) -> None:
    paint(doc, [(10, 10), (60, 10)], target=MASK, size=8)
    assert doc.mask[10, 30] == pytest.approx(1.0)
    assert doc.mask[50, 30] == 0.0
    erase = Stroke(doc, MASK, BrushSettings(size=8, erase=True), "Mask eraser")
    erase.move_to(30, 10)
    erase.end()
    assert doc.mask[10, 30] == pytest.approx(0.0, abs=1e-6)
    doc.undo()
    assert doc.mask[10, 30] == pytest.approx(1.0)


def test_stroke_opacity_does_not_build_up_within_a_stroke(doc: Document) -> None:
    base = np.zeros((64, 64, 3), np.uint8)
    d = Document.from_image(base)
    s = Stroke(
        d,
        d.active_layer.id,
        BrushSettings(size=20, hardness=1.0, opacity=0.5, spacing=0.05, color=(255, 255, 255)),
        "Brush",
    )
    s.move_to(10, 32)
    for x in range(11, 54):
        s.line_to(x, 32)
    s.end()
    # many overlapping dabs, yet the centre line stays at 50 % (127 or 128 after rounding)
    assert abs(int(d.active_layer.pixels[32, 32, 0]) - 128) <= 1


def test_apply_pixels_and_layer_commands_undo(doc: Document, photo) -> None:
    patch = np.full((10, 20, 4), 7, np.uint8)
    doc.apply_pixels(doc.active_layer.id, Rect(5, 5, 20, 10), patch, "Result")
    assert (doc.active_layer.pixels[5:15, 5:25] == 7).all()
    top = doc.add_layer(Layer.blank(doc.width, doc.height, "Top"))
    doc.set_layer_props(top.id, opacity=0.5)
    doc.move_layer(1, 0)
    assert [layer.name for layer in doc.layers] == ["Top", "Background"]
    for _ in range(4):
        doc.undo()
    assert len(doc.layers) == 1
    np.testing.assert_array_equal(doc.active_layer.pixels[:, :, :3], photo)
