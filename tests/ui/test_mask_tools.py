"""Selection tools and mask commands through the window: mask values, modes, undo, PNG files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from studio.document import mask_ops

SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier


def test_rectangle_replaces_shift_adds_alt_subtracts_click_clears(win, pointer, qtbot) -> None:
    doc = win.document
    qtbot.keyClick(win, Qt.Key.Key_R)
    pointer.drag([(10, 10), (30, 20), (40, 30)])
    expected = np.zeros_like(doc.mask)
    expected[10:30, 10:40] = 1
    np.testing.assert_array_equal(doc.mask, expected)
    pointer.drag([(60, 60), (70, 80)], SHIFT)
    expected[60:80, 60:70] = 1
    np.testing.assert_array_equal(doc.mask, expected)
    pointer.drag([(20, 0), (30, 96)], ALT)
    expected[:, 20:30] = 0
    np.testing.assert_array_equal(doc.mask, expected)
    pointer.drag([(0, 0), (64, 48)])  # no modifier: replace
    assert doc.mask.sum() == 64 * 48
    pointer.click(100, 90)
    assert not doc.mask.any()
    names = [s.name for s in doc.history.steps]
    assert names == [
        "Select rectangle",
        "Add rectangle to mask",
        "Subtract rectangle from mask",
        "Select rectangle",
        "Clear mask",
    ]
    for _ in names:
        win.undo()
    assert not doc.mask.any()
    win.redo()
    assert doc.mask[10:30, 10:40].all() and doc.mask.sum() == 600


def test_shift_alt_intersects_and_mode_box_sets_the_default(win, pointer) -> None:
    doc = win.document
    win.tools.select("rect")
    pointer.drag([(0, 0), (50, 50)])
    pointer.drag([(25, 25), (100, 90)], SHIFT | ALT)
    assert doc.mask.sum() == 25 * 25
    win.tool_panel.mode.setCurrentIndex(win.tool_panel.mode.findData("add"))
    pointer.drag([(80, 80), (90, 90)])  # the chosen default mode: add
    assert doc.mask.sum() == 25 * 25 + 100


def test_ellipse_covers_its_area_with_soft_edges(win, pointer) -> None:
    win.tools.select("ellipse")
    pointer.drag([(20, 10), (100, 70)])
    m = win.document.mask
    assert m.sum() == pytest.approx(math.pi * 40 * 30, rel=0.01)
    assert m[40, 60] == 1.0 and m[10, 20] == 0.0
    assert ((m > 0) & (m < 1)).any(), "the rim is antialiased"


def test_lasso_selects_inside_the_drawn_outline(win, pointer) -> None:
    win.tools.select("lasso")
    pointer.drag([(10, 10), (90, 10), (90, 50), (50, 80), (10, 50), (10, 12)])
    m = win.document.mask
    assert m[30, 50] == 1.0 and m[85, 50] == 0.0 and m[5, 5] == 0.0
    assert win.document.history.undo_name() == "Select lasso"


def test_polygon_clicks_enter_backspace_escape_double_click(win, pointer, qtbot) -> None:
    doc = win.document
    win.tools.select("polygon")
    for x, y in ((10, 10), (60, 10), (60, 60), (99, 99)):
        pointer.click(x, y)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Backspace)  # drops (99, 99)
    qtbot.keyClick(win.canvas, Qt.Key.Key_Return)
    expected_area = 0.5 * 50 * 50  # triangle (10,10) (60,10) (60,60)
    assert doc.mask.sum() == pytest.approx(expected_area, rel=0.02)
    for x, y in ((0, 0), (40, 0), (40, 40)):
        pointer.click(x, y)
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert doc.history.position == 1, "Esc dropped the unfinished polygon"
    for x, y in ((70, 20), (120, 20), (120, 70)):
        pointer.click(x, y)
    qtbot.mouseDClick(win.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pointer.at(120, 70))
    assert doc.history.position == 2
    assert doc.mask[30, 110] == 1.0 and doc.mask[15, 15] == 0.0  # replace dropped the first


def test_polygon_closes_on_a_click_near_its_first_corner(win, pointer) -> None:
    win.tools.select("polygon")
    for x, y in ((10, 10), (50, 10), (50, 50), (10.5, 10.5)):
        pointer.click(x, y)
    assert win.document.mask[20, 40] == 1.0 and win.document.history.position == 1


def test_mask_fill_tool_fills_inside_an_outline(win, pointer) -> None:
    doc = win.document
    win.tools.select("mask_brush")
    win.tools.set_brush("mask", size=4, hardness=1.0)
    pointer.drag([(20, 20), (80, 20), (80, 70), (20, 70), (20, 20)])
    win.tools.select("mask_fill")
    pointer.click(50, 45)
    assert doc.mask[45, 50] == 1.0 and doc.mask[5, 5] == 0.0 and doc.mask[90, 110] == 0.0
    assert doc.history.undo_name() == "Fill mask"


def test_menu_commands_match_the_numpy_operations(win) -> None:
    doc = win.document
    doc.mask[30:50, 40:70] = 1.0
    start = doc.mask.copy()
    win.settings.grow_px = 3
    win.settings.feather_px = 4
    cases = [
        ("grow", lambda m: mask_ops.grow(m, 3)),
        ("shrink", lambda m: mask_ops.shrink(m, 3)),
        ("feather", lambda m: mask_ops.feather(m, 4)),
        ("invert_mask", lambda m: 1 - m),
        ("select_all", np.ones_like),
        ("clear_mask", np.zeros_like),
    ]
    for action, ref in cases:
        before = doc.mask.copy()
        win.actions[action].trigger()
        np.testing.assert_allclose(doc.mask, ref(before), atol=1e-6, err_msg=action)
    assert doc.history.position == len(cases)
    doc.jump_to(0)
    np.testing.assert_array_equal(doc.mask, start)


def test_mask_png_round_trip(win, tmp_path) -> None:
    doc = win.document
    rng = np.random.default_rng(3)
    doc.set_mask(rng.random(doc.mask.shape).astype(np.float32), "Random mask")
    path = tmp_path / "mask.png"
    assert win.export_mask_path(path)
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (doc.width, doc.height)
    saved = doc.mask.copy()
    win.clear_mask()
    assert win.import_mask_path(path)
    np.testing.assert_allclose(doc.mask, saved, atol=0.5 / 255 + 1e-6)
    assert doc.history.undo_name() == "Import mask mask.png"


def test_a_mask_of_the_wrong_size_is_offered_scaling(win, tmp_path) -> None:
    doc = win.document
    small = np.zeros((48, 64), np.uint8)
    small[:24] = 255  # top half
    path = tmp_path / "half.png"
    Image.fromarray(small, "L").save(path)
    asked = []
    win.ask_scale_mask = lambda mask_size, image_size: asked.append((mask_size, image_size))
    assert not win.import_mask_path(path), "declined: nothing happens"
    assert asked == [((64, 48), (128, 96))] and not doc.mask.any()
    win.ask_scale_mask = lambda *_: True
    assert win.import_mask_path(path)
    assert doc.mask[:46].min() == 1.0 and doc.mask[50:].max() == 0.0
