"""The Stylize panel: thumbnails, blends, a picture as the style, mask-only runs."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from fakes import wait_finished
from studio.models.style_names import STYLES


def test_every_style_has_a_thumbnail_in_the_grid(win) -> None:
    grid = win.stylize_panel.grid
    ids = [grid.item(i).data(0x0100) for i in range(grid.count())]
    assert [s[1] for s in STYLES] == ids[: len(STYLES)]
    assert all(not grid.item(i).icon().isNull() for i in range(grid.count()))


def test_selecting_several_styles_blends_them(win) -> None:
    panel = win.stylize_panel
    panel.grid.clearSelection()
    for row in (0, 3):
        panel.grid.item(row).setSelected(True)
    params = panel.params()
    assert params.mix == ((STYLES[0][1], 0.5), (STYLES[3][1], 0.5))
    assert "Blend of" in panel.selection_label.text()


def test_a_picture_as_the_style_until_a_thumbnail_is_picked(win, tmp_path) -> None:
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "s.png")
    panel = win.stylize_panel
    assert panel.use_picture(str(tmp_path / "s.png"))
    assert panel.params().style == "image" and panel.params().style_image.shape == (32, 32, 3)
    panel.grid.item(2).setSelected(True)
    assert panel.params().style == STYLES[2][1]


def test_stylize_inside_the_mask_lands_as_one_step(qtbot, win, photo) -> None:
    doc = win.document
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[20:60, 30:90] = 1
    doc.set_mask(mask, "Mask")
    panel = win.stylize_panel
    panel.grid.clearSelection()
    panel.grid.item(10).setSelected(True)
    panel.in_mask.setChecked(True)
    panel.feather.setValue(0)
    panel.run_button.click()
    wait_finished(qtbot, win)
    steps = doc.history.position
    win.accept_result()
    assert doc.history.position == steps + 1
    out = doc.composite()[:, :, :3]
    np.testing.assert_array_equal(out[mask == 0], photo[mask == 0])
    assert np.abs(out[mask > 0].astype(int) - photo[mask > 0]).mean() > 5


def test_mask_only_without_a_mask_explains(win) -> None:
    win.stylize_panel.in_mask.setChecked(True)
    win.stylize_panel.run_button.click()
    boxes = [b for b in win.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "Paint a mask" in boxes[-1].text()
