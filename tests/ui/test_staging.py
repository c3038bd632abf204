"""Staging: results land as a new layer or merge (remembered), painting while a job runs,
Regenerate, the unsaved-changes prompt, and task panels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from fakes import wait_finished
from studio.settings import Settings
from studio.ui.main_window import MainWindow
from studio.ui.panels.model_picker import describe
from studio.ui.panels.upscale import UpscalePanel

GREEN = (0, 255, 0)


def test_a_result_lands_as_a_new_layer_by_default(qtbot, win, pointer, stamp, photo) -> None:
    doc = win.document
    win.controller.submit(stamp(rect=(10, 20, 30, 15), color=GREEN), doc.composite())
    wait_finished(qtbot, win)
    at = pointer.at(20, 25)
    assert tuple(pointer.rendered()[at.y(), at.x(), :3]) == GREEN, "the preview is on screen"
    assert tuple(doc.composite()[25, 20, :3]) == tuple(photo[25, 20]), "but not applied yet"
    assert win.staging.isVisible() and win.staging.landing.isVisible()
    assert win.staging.landing.currentText() == "New layer"
    assert win.staging.parent() is win.canvas.viewport(), "floats over the canvas: no shift"
    win.staging.show_result.click()  # peek at the image under the preview
    assert not win.canvas.preview_item.isVisible()
    win.staging.show_result.click()
    assert win.canvas.preview_item.isVisible()
    qtbot.keyClick(win, Qt.Key.Key_Return)
    assert len(doc.layers) == 2 and doc.history.undo_name() == "Stamp result"
    top = doc.layers[1]
    assert (top.pixels[20:35, 10:40] == (*GREEN, 255)).all()
    assert top.pixels[:20, :, 3].max() == 0, "only the changed pixels are on the layer"
    expected = photo.copy()
    expected[20:35, 10:40] = GREEN
    np.testing.assert_array_equal(doc.composite()[:, :, :3], expected)
    np.testing.assert_array_equal(doc.layers[0].pixels[:, :, :3], photo)
    win.undo()
    assert len(doc.layers) == 1


def test_merge_is_chosen_remembered_and_applied(qtbot, win, stamp, photo, studio_home) -> None:
    doc = win.document
    win.controller.submit(stamp(rect=(0, 0, 8, 8)), doc.composite())
    wait_finished(qtbot, win)
    win.staging.landing.setCurrentIndex(win.staging.landing.findData(False))
    win.accept_result()
    assert len(doc.layers) == 1 and (doc.layers[0].pixels[:8, :8, :3] == GREEN).all()
    win._save_timer.timeout.emit()  # the debounced save, now
    assert Settings.load().result_mode == "merge"
    again = MainWindow(win.controller.engine)
    qtbot.addWidget(again)
    assert again.staging.landing.currentText() == "Merge into active layer"
    assert again.controller.as_new_layer is False


def test_painting_while_a_job_runs_lands_the_result_as_a_new_layer(
    qtbot, win, pointer, stamp, gates
) -> None:
    doc = win.document
    win.controller.as_new_layer = False  # the artist chose "merge"
    win.controller.submit(stamp(rect=(60, 60, 20, 20), gated=True), doc.composite())
    assert gates.reached[0].wait(10)
    win.tools.set_brush("paint", size=6, hardness=1.0, color=(255, 0, 0))
    pointer.drag([(10, 10), (50, 10)])  # the canvas is not blocked by the job
    assert tuple(doc.active_layer.pixels[10, 30, :3]) == (255, 0, 0)
    gates.release_all()
    wait_finished(qtbot, win)
    messages = []
    win.controller.status.connect(messages.append)
    win.accept_result()
    assert len(doc.layers) == 2, "merging would have painted over the new stroke"
    assert "new layer" in messages[-1]
    assert tuple(doc.layers[0].pixels[10, 30, :3]) == (255, 0, 0)
    assert [s.name for s in doc.history.steps] == ["Brush", "Stamp result"]


def test_editing_only_the_mask_meanwhile_still_merges(qtbot, win, pointer, stamp, gates) -> None:
    doc = win.document
    win.controller.as_new_layer = False
    win.controller.submit(stamp(gated=True), doc.composite())
    assert gates.reached[0].wait(10)
    win.actions["select_all"].trigger()
    gates.release_all()
    wait_finished(qtbot, win)
    win.accept_result()
    assert len(doc.layers) == 1


def test_regenerate_runs_the_same_job_with_a_new_id_and_seed(qtbot, win, stamp) -> None:
    doc = win.document
    first = win.controller.submit(stamp(rect=(5, 5, 4, 4), seed=7), doc.composite())
    wait_finished(qtbot, win)
    staged = win.controller.staged
    win.staging.regenerate_button.click()
    assert win.controller.staged is None and win.controller.active is not None
    again = win.controller.active
    assert again.job_id != first and again.params.rect == (5, 5, 4, 4)
    assert again.params.seed != 7 and again.image is staged.request.image
    msg = wait_finished(qtbot, win)
    assert msg.job_id == again.job_id and win.controller.staged.info["seed"] == again.params.seed


def test_unsaved_changes_are_asked_about_on_open_and_close(win, pointer, photo_file) -> None:
    asked = []

    def answer(reply):
        def ask():
            asked.append(reply)
            return reply

        return ask

    assert win.open_path(photo_file) and asked == [], "an untouched image closes silently"
    pointer.drag([(10, 10), (40, 10)])
    assert win.document.is_modified and win.windowTitle().startswith("*")
    win.ask_save_changes = answer("cancel")
    doc = win.document
    assert not win.open_path(photo_file) and win.document is doc
    assert not win.close() and win.isVisible()
    win.ask_save_changes = answer("discard")
    assert win.open_path(photo_file) and win.document is not doc
    assert asked == ["cancel", "cancel", "discard"]
    pointer.drag([(10, 10), (40, 10)])
    assert win.export_path(photo_file.with_name("out.png")) and win.document.is_modified
    win.ask_save_changes = answer("cancel")
    assert win.close(), "exported: nothing to ask"
    assert asked == ["cancel", "cancel", "discard"]


def test_task_panels_are_tabs_and_upscale_still_runs(qtbot, win) -> None:
    dock = win.add_task_panel("Extra", QLabel("more options"))
    assert dock is win.upscale_dock
    titles = [win.task_tabs.tabText(i) for i in range(win.task_tabs.count())]
    assert titles[0] == "Upscale" and titles[-1] == "Extra" and "Inpaint" in titles
    win.upscale_panel.run_button.click()
    wait_finished(qtbot, win)
    assert not win.staging.landing.isVisible(), "an upscale replaces the image: no landing choice"
    win.accept_result()
    assert win.document.width == 256


def test_upscale_description_says_the_speed_once() -> None:
    assert describe("Sharp classical resampling; no new detail. Instant.", "instant") == (
        "Sharp classical resampling; no new detail. Instant."
    )
    assert describe("Restores detail.", "slow") == "Restores detail. Speed: slow."
    panel = UpscalePanel()
    assert panel.description.text().lower().count("instant") == 1
    panel.deleteLater()


def test_upscale_panel_estimates_before_running(win) -> None:
    panel = win.upscale_panel
    panel.model.select("lanczos")
    panel.scale.setValue(4.0)
    assert "512x384" in panel.estimate.text() and panel.run_button.isEnabled()
    panel.scale.setValue(16.0)
    # the 128x96 photo x16 still fits: 2048x1536
    assert "2048x1536" in panel.estimate.text()
    panel.set_image_size(20000, 20000)  # x16 would be 320000 px wide
    assert "the limit is" in panel.estimate.text() and not panel.run_button.isEnabled()
