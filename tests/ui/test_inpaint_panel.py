"""The Inpaint panel end to end: fill the painted mask, refuse an empty one, extend the canvas."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from fakes import wait_finished


def test_fill_mask_lands_only_the_masked_pixels_as_one_step(qtbot, win, photo) -> None:
    doc = win.document
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[30:50, 40:70] = 1
    doc.set_mask(mask, "Mask")
    panel = win.inpaint_panel
    panel.method.select("navier-stokes")
    panel.grow.setValue(0)
    panel.feather.setValue(0)
    steps = doc.history.position
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, win)
    win.accept_result()
    assert doc.history.position == steps + 1
    assert doc.history.undo_name() == "Inpaint result"
    out = doc.composite()[:, :, :3]
    np.testing.assert_array_equal(out[mask == 0], photo[mask == 0])
    assert not np.array_equal(out[mask > 0], photo[mask > 0])
    doc.undo()
    np.testing.assert_array_equal(doc.composite()[:, :, :3], photo)


def test_an_empty_mask_explains_instead_of_running(qtbot, win) -> None:
    win.inpaint_panel.run_button.click()
    boxes = [b for b in win.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "Paint a mask" in boxes[-1].text()
    assert win.controller.active is None


def test_outpaint_grows_every_layer_and_adds_the_fill_on_top(qtbot, win, photo) -> None:
    doc = win.document
    panel = win.inpaint_panel
    panel.method.select("telea")
    panel.extend.setValue(24)
    for side, box in panel.sides.items():
        box.setChecked(side in ("left", "bottom"))
    panel.outpaint_button.click()
    wait_finished(qtbot, win)
    win.accept_result()
    assert (doc.width, doc.height) == (152, 120)
    assert [layer.name for layer in doc.layers][-1] == "Outpaint"
    assert (doc.composite()[:, :, 3] == 255).all(), "the new margins are filled"
    np.testing.assert_array_equal(doc.layers[0].pixels[:96, 24:, :3], photo)
    doc.undo()
    assert (doc.width, doc.height) == (128, 96)


def test_own_weights_appear_in_the_method_list(win, tmp_path) -> None:
    picker = win.inpaint_panel.method
    picker.add_file(str(tmp_path / "big-lama.safetensors"))
    assert picker.current().endswith("big-lama.safetensors")
    assert "Your weights" in picker.description.text()
    assert win.inpaint_panel.params().method == picker.current()


def test_outpaint_to_an_aspect_ratio(qtbot, win) -> None:
    panel = win.inpaint_panel
    panel.method.select("telea")
    panel.aspect.setCurrentIndex(panel.aspect.findData("16:9"))
    params = panel.outpaint_params((128, 96))
    assert (params.left, params.right, params.top, params.bottom) == (21, 22, 0, 0)
    panel.outpaint_button.click()
    wait_finished(qtbot, win)
    win.accept_result()
    assert (win.document.width, win.document.height) == (171, 96)


def test_panel_options_reach_the_job(win) -> None:
    panel = win.inpaint_panel
    panel.method.select("studio-inpaint")
    panel.grow.setValue(-3)
    panel.feather.setValue(9)
    panel.padding.setValue(200)
    params = panel.params()
    assert (params.method, params.grow, params.feather, params.padding) == (
        "studio-inpaint",
        -3,
        9,
        200,
    )
