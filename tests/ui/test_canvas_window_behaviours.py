"""What a new user ran into (issue 11, part 5a): Space-drag panning whatever has focus, export
keeping the unsaved mark, generated pictures landing transparent, upscale keeping the view on the
same part of the picture, and Generate thumbnails cleared when another image opens."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from fakes import wait_finished
from studio.document.cutout import cut_out
from studio.engine.jobs import JobRequest, UpscaleParams
from studio.engine.messages import TileReady
from studio.engine.tasks.generate import GenerateParams, no_pixels
from studio.geometry import Rect
from studio.ui.controller import StagedResult
from studio.ui.panels.panel_run import PanelRun


def _focus(qtbot, widget) -> None:
    widget.window().activateWindow()
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=2000)


def _scroll(canvas) -> tuple[int, int]:
    return canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value()


def test_space_drag_pans_even_when_a_panel_button_has_focus(qtbot, win, pointer) -> None:
    canvas, doc = win.canvas, win.document
    canvas.set_zoom(16.0)  # 2048x1536 on screen: room to scroll both ways
    canvas.centerOn(QPointF(64, 48))
    win.task_tabs.setCurrentWidget(win.generate_panel)
    button = win.generate_panel.dice  # "New seed": Space would press it
    seed = win.generate_panel.seed.value()
    _focus(qtbot, button)
    qtbot.mouseMove(canvas.viewport(), pointer.at(64, 48))  # the pointer rests on the canvas
    before, steps = _scroll(canvas), len(doc.history.steps)
    moved = pointer.at(64, 48) - pointer.at(56, 44)  # 128, 64 screen pixels
    qtbot.keyPress(QApplication.focusWidget(), Qt.Key.Key_Space)
    pointer.drag([(64, 48), (60, 46), (56, 44)])  # up and to the left
    qtbot.keyRelease(QApplication.focusWidget(), Qt.Key.Key_Space)
    after = _scroll(canvas)
    scrolled = (after[0] - before[0], after[1] - before[1])
    assert scrolled == (moved.x(), moved.y()) == (128, 64), f"the view scrolled {scrolled}"
    assert len(doc.history.steps) == steps, "no stroke was painted"
    assert win.generate_panel.seed.value() == seed, "Space did not press the focused button"
    pointer.drag([(64, 48), (70, 48)])  # Space is up again: the tool paints
    assert len(doc.history.steps) == steps + 1 and _scroll(canvas) == after


def test_space_typed_in_a_text_field_is_text_not_panning(qtbot, win, pointer) -> None:
    field = QLineEdit()
    win.add_task_panel("Notes", field)
    win.task_tabs.setCurrentWidget(field)
    _focus(qtbot, field)
    qtbot.mouseMove(win.canvas.viewport(), pointer.at(64, 48))
    qtbot.keyClicks(field, "a b")
    assert field.text() == "a b"
    pointer.drag([(20, 20), (40, 20)])
    assert len(win.document.history.steps) == 1, "Space in a text field does not arm panning"


def test_export_keeps_the_unsaved_mark(qtbot, win, pointer, tmp_path) -> None:
    pointer.drag([(10, 10), (40, 10)])
    assert win.windowTitle().startswith("*")
    assert win.export_path(tmp_path / "flat.png")
    assert win.windowTitle().startswith("*"), "the layers and history are not saved anywhere"
    assert win.document.is_modified
    asked = []
    win.ask_save_changes = lambda: asked.append("asked") or "cancel"
    assert win.confirm_discard_changes() and asked == [], "the export has every pixel: no prompt"
    pointer.drag([(10, 30), (40, 30)])
    assert not win.confirm_discard_changes() and asked == ["asked"], "a newer edit is asked about"
    win.ask_save_changes = lambda: "discard"


def _land_generated(win, image: np.ndarray) -> np.ndarray:
    """Stage ``image`` as a one-cell generate result, accept it; the new layer's pixels."""
    h, w = image.shape[:2]
    request = JobRequest(GenerateParams(count=1), no_pixels())
    info = {"cells": [{"index": 0, "seed": 3, "rect": (0, 0, w, h)}]}
    win.controller.staged = StagedResult(request, image, info)
    win.accept_result()
    doc = win.document
    ox, oy = (doc.width - w) // 2, (doc.height - h) // 2
    return doc.layers[-1].pixels[oy : oy + h, ox : ox + w]


def test_a_generated_rgba_picture_keeps_its_transparency(win) -> None:
    picture = np.zeros((40, 40, 4), np.uint8)
    picture[10:30, 10:30] = (250, 200, 0, 255)  # an opaque yellow square on nothing
    picture[10:30, 9] = (250, 200, 0, 128)  # with a soft left edge
    landed = _land_generated(win, picture)
    assert landed[:, :, 3].max() == 255 and landed[0, 0, 3] == 0, "alpha 0 where it was 0"
    np.testing.assert_array_equal(landed[:, :, 3], picture[:, :, 3])
    np.testing.assert_array_equal(landed[10:30, 10:30, :3], picture[10:30, 10:30, :3])


def test_a_generated_picture_on_white_lands_without_its_background(win) -> None:
    picture = np.full((48, 48, 3), 255, np.uint8)
    picture[2, 2] = (250, 252, 248)  # the model's background is only nearly white
    picture[8:40, 8:40] = (30, 30, 30)  # a dark face ...
    picture[16:24, 16:24] = (255, 255, 255)  # ... with white eyes
    picture[8:40, 7] = (142, 142, 142)  # a half-covered, anti-aliased edge pixel column
    landed = _land_generated(win, picture)
    alpha = landed[:, :, 3]
    assert alpha[:6, :].max() == 0 and alpha[41:, :].max() == 0, "the white around is gone"
    assert (alpha[8:40, 8:40] == 255).all(), "the face, eyes included, is opaque"
    edge = landed[20, 7].astype(int)
    assert abs(int(edge[3]) - 127) <= 2 and np.abs(edge[:3] - 30).max() <= 2, (
        f"the edge pixel is the face colour, half transparent: {edge}"
    )


def test_cut_out_keeps_pictures_without_a_white_surround_whole() -> None:
    dark = np.full((16, 16, 3), 40, np.uint8)
    assert (cut_out(dark)[:, :, 3] == 255).all(), "nothing white around: nothing cut"
    assert (cut_out(np.full((16, 16, 3), 255, np.uint8))[:, :, 3] == 0).all()
    opaque_rgba = np.dstack([np.full((16, 16, 3), 255, np.uint8), np.full((16, 16), 255, np.uint8)])
    assert (cut_out(opaque_rgba)[:, :, 3] == 0).all(), "alpha that says nothing: cut the white"


def _view_centre(canvas) -> QPointF:
    return canvas.mapToScene(canvas.viewport().rect().center())


def test_accepting_an_upscale_keeps_the_same_part_in_view(qtbot, win) -> None:
    canvas = win.canvas
    canvas.set_zoom(16.0)  # 2048x1536 on screen, so the view can centre on (40, 30)
    canvas.centerOn(QPointF(40, 30))
    before = _view_centre(canvas)
    assert abs(before.x() - 40) < 0.5 and abs(before.y() - 30) < 0.5
    win.run_panel(PanelRun(UpscaleParams("lanczos", 2, tile=32)))
    wait_finished(qtbot, win)
    win.accept_result()
    assert (win.document.width, win.document.height) == (256, 192)
    after = _view_centre(canvas)
    assert abs(after.x() - 2 * before.x()) <= 2 and abs(after.y() - 2 * before.y()) <= 2, (
        f"view centre {after.x():.1f}, {after.y():.1f}; expected {2 * before.x():.1f}, "
        f"{2 * before.y():.1f}"
    )
    assert canvas.zoom == 8.0, "half the zoom: the picture looks the same size on screen"


def test_opening_another_image_clears_the_generate_thumbnails(win, photo_file) -> None:
    panel = win.generate_panel
    cell = np.full((8, 8, 3), 200, np.uint8)
    panel.add_result(TileReady(1, Rect(0, 0, 8, 8), cell, (8, 8)))
    assert panel.results.count() == 1
    assert win.open_path(photo_file)
    assert panel.results.count() == 0


def test_opening_another_image_drops_the_running_job(qtbot, win, stamp, gates, photo_file):
    win.controller.submit(stamp(gated=True), win.document.composite())
    assert gates.reached[0].wait(10)
    assert win.open_path(photo_file)
    abandoned = win.controller.active is None and not win.cancel_button.isVisible()
    gates.release_all()  # before asserting: a failure must not leave the engine waiting
    assert abandoned, "the job of the old image is no longer shown as running"
    qtbot.waitUntil(lambda: win.controller.dropped > 0)  # its last message came, and was dropped
    assert win.controller.staged is None and not win.canvas.preview_item.isVisible()
