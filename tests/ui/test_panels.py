"""Layers and History panels drive the document, mirror it, and never echo their own edits."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt

from studio.document import Layer, composite
from studio.geometry import Rect


def stack(win) -> list[str]:
    """Layer names as the panel lists them (top first)."""
    lst = win.layers_panel.list
    return [lst.item(i).text() for i in range(lst.count())]


def add_red_square(win) -> Layer:
    win.actions["add"].trigger()
    layer = win.document.active_layer
    layer.pixels[10:30, 10:30] = (255, 0, 0, 255)
    win.document.notify_pixels(layer.id, Rect(10, 10, 20, 20))
    return layer


def test_add_duplicate_rename_hide_delete_each_one_step(win, qtbot) -> None:
    doc = win.document
    panel = win.layers_panel
    assert stack(win) == ["photo"]
    win.actions["add"].trigger()
    assert stack(win) == ["Layer 1", "photo"] and doc.active_index == 1
    win.actions["duplicate"].trigger()
    assert stack(win) == ["Layer 1 copy", "Layer 1", "photo"]
    panel.list.item(0).setText("Sky")  # what a double-click edit does
    assert doc.layers[2].name == "Sky" and stack(win)[0] == "Sky"
    panel.list.item(2).setCheckState(Qt.CheckState.Unchecked)
    assert not doc.layers[0].visible
    assert not win.canvas.doc_item.image.isNull()
    win.actions["delete"].trigger()
    assert len(doc.layers) == 2
    names = [s.name for s in doc.history.steps]
    assert names == ["Add layer", "Duplicate Layer 1", "Rename layer", "Hide layer", "Delete Sky"]
    for _ in names:
        win.undo()
    assert stack(win) == ["photo"] and doc.layers[0].visible


def test_clicking_a_row_chooses_the_layer_to_paint_on(win, pointer) -> None:
    doc = win.document
    win.actions["add"].trigger()
    win.layers_panel.list.setCurrentRow(1)  # the photo
    assert doc.active_index == 0
    win.tools.set_brush("paint", size=6, hardness=1.0, color=(0, 0, 255))
    pointer.drag([(40, 40), (60, 40)])
    assert tuple(doc.layers[0].pixels[40, 50, :3]) == (0, 0, 255)
    assert doc.layers[1].pixels[:, :, 3].max() == 0


def test_reorder_by_drag_and_by_buttons(win) -> None:
    doc = win.document
    win.actions["add"].trigger()
    win.actions["add"].trigger()
    assert stack(win) == ["Layer 2", "Layer 1", "photo"]
    model = win.layers_panel.list.model()
    # what an internal drag-and-drop does: move row 0 (top) below row 2
    assert model.moveRow(QModelIndex(), 0, QModelIndex(), 3)
    assert [layer.name for layer in doc.layers] == ["Layer 2", "photo", "Layer 1"]
    assert stack(win) == ["Layer 1", "photo", "Layer 2"]
    assert doc.history.undo_name() == "Reorder layers"
    win.layers_panel.list.setCurrentRow(0)
    win.actions["lower"].trigger()
    assert stack(win) == ["photo", "Layer 1", "Layer 2"]
    win.actions["raise"].trigger()
    assert stack(win) == ["Layer 1", "photo", "Layer 2"]
    win.undo()
    win.undo()
    win.undo()
    assert stack(win) == ["Layer 2", "Layer 1", "photo"]


def test_merge_down_matches_the_composite(win) -> None:
    doc = win.document
    layer = add_red_square(win)
    doc.set_layer_props(layer.id, opacity=0.5)
    expected = composite(doc.layers, doc.bounds)
    win.actions["merge_down"].trigger()
    assert len(doc.layers) == 1 and stack(win) == ["photo"]
    np.testing.assert_allclose(
        doc.layers[0].pixels.astype(int),
        expected.astype(int),
        atol=1,
        err_msg="merged pixels equal the composite of the two layers (rounding: 1 level)",
    )
    assert doc.history.undo_name() == "Merge Layer 1 down"
    step = doc.history.current_step()
    assert step.nbytes < 2 * 20 * 20 * 4 + layer.pixels.nbytes + 1, "pixels: square only"
    win.undo()
    assert [lay.name for lay in doc.layers] == ["photo", "Layer 1"]
    win.layers_panel.list.setCurrentRow(1)
    win.actions["merge_down"].trigger()  # the bottom layer: refused with a message
    assert len(doc.layers) == 2


def test_opacity_slider_drag_is_live_and_one_step(win, qtbot) -> None:
    doc = win.document
    layer = add_red_square(win)
    slider = win.layers_panel.opacity
    slider.setSliderDown(True)
    win.layers_panel._on_opacity_pressed()
    for value in (90, 70, 40):
        slider.setValue(value)
        assert layer.opacity == pytest.approx(value / 100)
    slider.setSliderDown(False)
    win.layers_panel._on_opacity_released()
    assert doc.history.undo_name() == "Layer opacity"
    assert doc.history.position == 2  # add + one opacity step
    win.undo()
    assert layer.opacity == 1.0 and slider.value() == 100


def test_history_panel_lists_steps_and_jumps(win, pointer, qtbot) -> None:
    doc = win.document
    win.tools.set_brush("paint", size=6, hardness=1.0, color=(255, 255, 0))
    pointer.drag([(10, 10), (60, 10)])
    win.actions["select_all"].trigger()
    win.actions["add"].trigger()
    lst = win.history_panel.list
    assert [lst.item(i).text() for i in range(lst.count())] == [
        "Open image",
        "Brush",
        "Select all",
        "Add layer",
    ]
    assert lst.currentRow() == 3
    rect = lst.visualItemRect(lst.item(1))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert doc.history.position == 1 and len(doc.layers) == 1 and not doc.mask.any()
    assert tuple(doc.active_layer.pixels[10, 30, :3]) == (255, 255, 0)
    assert lst.currentRow() == 1 and lst.item(3).font().italic()
    rect = lst.visualItemRect(lst.item(0))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert doc.history.position == 0 and not doc.is_modified
    assert "MiB" in win.history_panel.memory.text()


def test_history_panel_updates_only_changed_rows(win, pointer) -> None:
    """A new step adds one row and keeps the existing items (a full refill per stroke made a
    long painting session quadratic); after undo, a new branch and a jump the rows still
    mirror the history exactly."""
    doc = win.document
    lst = win.history_panel.list
    win.tools.set_brush("paint", size=6, hardness=1.0, color=(255, 0, 0))
    for x in range(3):
        pointer.drag([(10 + 20 * x, 10), (20 + 20 * x, 30)])
    kept = [lst.item(i) for i in range(lst.count())]
    pointer.drag([(80, 10), (90, 30)])
    assert lst.count() == 5 and [lst.item(i) for i in range(4)] == kept

    def shown():
        return [(lst.item(i).text(), lst.item(i).font().italic()) for i in range(lst.count())]

    def expected():
        names = ["Open image", *(s.name for s in doc.history.steps)]
        return [(n, row > doc.history.position) for row, n in enumerate(names)]

    win.actions["undo"].trigger()
    win.actions["undo"].trigger()
    assert shown() == expected() and lst.currentRow() == 2
    win.actions["select_all"].trigger()  # a new branch drops the two undone rows
    assert shown() == expected() and lst.count() == 4
    win.actions["undo"].trigger()
    win.actions["redo"].trigger()
    assert shown() == expected() and lst.currentRow() == 3


def test_each_kind_of_step_undoes_and_redoes(win, pointer) -> None:
    """Stroke, mask edit, layer edit: undo restores the exact state before, redo the after."""
    doc = win.document
    states = []

    def snapshot():
        return ([lay.pixels.copy() for lay in doc.layers], doc.mask.copy(), len(doc.layers))

    states.append(snapshot())
    win.tools.set_brush("paint", size=8, hardness=0.5, color=(1, 2, 3))
    pointer.drag([(5, 50), (120, 60)])
    states.append(snapshot())
    win.tools.select("ellipse")
    pointer.drag([(30, 20), (90, 80)])
    states.append(snapshot())
    win.actions["feather"].trigger()
    states.append(snapshot())
    win.actions["duplicate"].trigger()
    states.append(snapshot())
    for expected in reversed(states[:-1]):
        win.undo()
        layers, mask, n = snapshot()
        assert n == expected[2]
        np.testing.assert_array_equal(mask, expected[1])
        for a, b in zip(layers, expected[0], strict=True):
            np.testing.assert_array_equal(a, b)
    for expected in states[1:]:
        win.redo()
        layers, mask, n = snapshot()
        assert n == expected[2]
        np.testing.assert_array_equal(mask, expected[1])
