"""Object select and magic wand on the canvas: one undo step each, modes, exact undo."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio.document import Document

SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier
CTRL = Qt.KeyboardModifier.ControlModifier
N = 160
DISC_BOX = [(30, 46), (60, 80), (114, 130)]  # a drag from corner to corner around the disc
SQUARE = (slice(50, 66), slice(126, 150))  # rows, columns of a blue square right of the disc


@pytest.fixture
def scene(win):
    """The window showing a red disc and a blue square on a textured green background.

    Returns (document, the disc as a boolean array)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:N, 0:N].astype(np.float32)
    img = np.empty((N, N, 3), np.float32)
    img[..., 0] = 40 + 30 * np.sin(x / 7)
    img[..., 1] = 150 + 40 * np.sin(y / 5) * np.cos(x / 9)
    img[..., 2] = 50
    img += rng.normal(0, 10, img.shape)
    disc = (x + 0.5 - 72) ** 2 + (y + 0.5 - 88) ** 2 <= 38**2
    img[disc] = (200, 30, 35)
    img[SQUARE] = (40, 60, 220)
    doc = Document.from_image(np.clip(img, 0, 255).astype(np.uint8), "scene")
    doc.mark_clean()
    win.set_document(doc)
    win.canvas.actual_size()
    return doc, disc


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    selected = mask >= 0.5
    return float((selected & truth).sum() / (selected | truth).sum())


def random_mask(doc: Document) -> np.ndarray:
    """A soft mask with every kind of value, so that undo must restore it bit for bit."""
    rng = np.random.default_rng(5)
    return rng.random(doc.mask.shape).astype(np.float32)


def test_object_select_is_one_step_and_undo_restores_the_old_mask(
    win, pointer, qtbot, scene
) -> None:
    doc, disc = scene
    doc.set_mask(random_mask(doc), "Random mask")
    old = doc.mask.copy()
    qtbot.keyClick(win, Qt.Key.Key_W, SHIFT)
    assert win.tools.current == "object_select"
    assert win.tool_panel.object_box.isVisibleTo(win.tool_panel)
    assert not win.tool_panel.object_apply.isEnabled()
    pointer.drag(DISC_BOX)
    np.testing.assert_array_equal(doc.mask, old)  # nothing written until applied
    assert doc.history.position == 1 and win.tool_panel.object_apply.isEnabled()
    assert not win.canvas.outline.path.isEmpty(), "the outline shows what was found"
    qtbot.keyClick(win.canvas, Qt.Key.Key_Return)
    assert doc.history.position == 2 and doc.history.undo_name() == "Object select"
    assert iou(doc.mask, disc) >= 0.9 and doc.mask[SQUARE].max() == 0.0
    assert win.canvas.outline.path.isEmpty() and not win.tool_panel.object_apply.isEnabled()
    win.undo()
    np.testing.assert_array_equal(doc.mask, old)
    win.redo()
    assert iou(doc.mask, disc) >= 0.9


def test_object_select_background_stroke_and_apply_button(win, pointer, scene) -> None:
    doc, disc = scene
    win.tools.select("object_select")
    wide = [(30, 46), (152, 130)]  # the box also holds the blue square
    pointer.drag(wide)
    assert win.tools.tool.result[SQUARE].mean() > 0.9, "GrabCut takes the square as object"
    pointer.drag([(136, 56), (140, 58)], ALT)  # a background stroke on the square
    assert win.tools.tool.result[SQUARE].max() == 0.0
    assert doc.history.position == 0, "refining records nothing"
    win.tool_panel.object_apply.click()
    assert doc.history.position == 1 and iou(doc.mask, disc) >= 0.9
    assert doc.mask[SQUARE].max() == 0.0


def test_object_select_modes_escape_and_tool_switch(win, pointer, qtbot, scene) -> None:
    doc, disc = scene
    win.tools.select("object_select")
    corner = np.zeros_like(doc.mask)
    corner[:20, :20] = 1.0
    doc.set_mask(corner, "Corner")
    pointer.drag(DISC_BOX, SHIFT)  # add
    qtbot.keyClick(win.canvas, Qt.Key.Key_Return)
    assert doc.history.undo_name() == "Object select (add)"
    assert doc.mask[:20, :20].min() == 1.0 and iou(doc.mask[20:], disc[20:]) >= 0.9
    win.select_all()
    pointer.drag(DISC_BOX, ALT)  # subtract
    win.tools.select("brush")  # switching tools applies what is pending
    assert doc.history.undo_name() == "Object select (subtract)"
    assert doc.mask[disc].mean() < 0.05 and doc.mask[~disc].mean() > 0.95
    position = doc.history.position
    win.tools.select("object_select")
    pointer.drag(DISC_BOX)
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert win.tools.tool.result is None and win.canvas.outline.path.isEmpty()
    win.tools.select("brush")
    assert doc.history.position == position, "Esc dropped the object"


def test_magic_wand_click_shift_adds_ctrl_and_alt_subtract(win, pointer, qtbot, scene) -> None:
    doc, disc = scene
    doc.set_mask(random_mask(doc), "Random mask")
    old = doc.mask.copy()
    qtbot.keyClick(win, Qt.Key.Key_W)
    assert win.tools.current == "magic_wand"
    assert win.tool_panel.wand_box.isVisibleTo(win.tool_panel)
    pointer.click(72, 88)
    assert doc.history.undo_name() == "Magic wand" and doc.history.position == 2
    np.testing.assert_array_equal(doc.mask, disc.astype(np.float32))
    pointer.click(138, 58, SHIFT)
    assert doc.history.undo_name() == "Magic wand (add)"
    assert doc.mask[SQUARE].min() == 1.0 and doc.mask[disc].min() == 1.0
    pointer.click(72, 88, CTRL)
    assert doc.history.undo_name() == "Magic wand (subtract)" and doc.mask[disc].max() == 0.0
    pointer.click(138, 58, ALT)
    assert not doc.mask.any()
    for _ in range(4):
        win.undo()
    np.testing.assert_array_equal(doc.mask, old)


def test_wand_options_in_the_panel(win, pointer, scene) -> None:
    doc, disc = scene
    win.tools.select("magic_wand")
    doc.layers[0].pixels[10:20, 10:20, :3] = (200, 30, 35)  # a second red patch, apart
    panel = win.tool_panel
    assert panel.contiguous.isChecked()
    pointer.click(72, 88)
    assert doc.mask[10:20, 10:20].max() == 0.0
    panel.contiguous.setChecked(False)
    pointer.click(72, 88)
    assert doc.mask[10:20, 10:20].min() == 1.0 and doc.mask[disc].min() == 1.0
    panel.tolerance.setValue(0)
    assert win.tools.wand_tolerance == 0
    pointer.click(5, 150)  # textured green: at tolerance 0 only its own exact colour
    assert 1 <= doc.mask.sum() < 20
