"""The Generate panel: cells stream in as thumbnails; the picked one lands as a new layer."""

from __future__ import annotations

import numpy as np

from fakes import wait_finished


def test_cells_stream_in_and_the_picked_one_lands_centred(qtbot, win) -> None:
    panel = win.generate_panel
    panel.model.select("studio-emoji-gan")
    panel.seed.setValue(10)
    panel.count.setValue(4)
    layers = len(win.document.layers)
    panel.run_button.click()
    done = wait_finished(qtbot, win)
    assert panel.results.count() == 4
    assert [c["seed"] for c in done.info["cells"]] == [10, 11, 12, 13]
    panel.results.setCurrentRow(2)
    win.accept_result()
    doc = win.document
    assert len(doc.layers) == layers + 1 and doc.layers[-1].name == "Generated (seed 12)"
    x, y, w, h = done.info["cells"][2]["rect"]
    cell = done.image[y : y + h, x : x + w]
    top = doc.layers[-1].pixels
    ox, oy = (doc.width - w) // 2, (doc.height - h) // 2
    landed = top[oy : oy + h, ox : ox + w]
    opaque = landed[:, :, 3] == 255  # the picture; its white background and edge are cut out
    assert opaque.mean() > 0.2 and landed[0, 0, 3] == 0
    np.testing.assert_array_equal(landed[opaque, :3], cell[opaque, :3])
    assert (top[:oy, :, 3] == 0).all(), "the layer is transparent around the picture"


def test_variations_use_the_vae_and_the_image(qtbot, win) -> None:
    panel = win.generate_panel
    panel.model.select("studio-emoji-gan")  # "Make" is an option of the noise models
    panel.mode.setCurrentIndex(panel.mode.findData("variations"))
    assert panel.model.current() == "studio-emoji-vae"
    panel.count.setValue(2)
    panel.run_button.click()
    done = wait_finished(qtbot, win)
    assert done.info["mode"] == "variations" and panel.results.count() == 2


def test_size_only_applies_when_enlarging(win) -> None:
    panel = win.generate_panel
    panel.upscale.setCurrentIndex(0)
    assert panel.upscale.currentData() is None and not panel.size.isEnabled()
    panel.upscale.setCurrentIndex(1)
    assert panel.upscale.currentData() is not None and panel.size.isEnabled()
