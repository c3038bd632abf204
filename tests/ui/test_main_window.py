"""Main window and controller with a real engine thread: open, preview, accept, cancel, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from fakes import FakeParams
from studio.engine.jobs import UpscaleParams
from studio.engine.messages import TERMINAL, JobCancelled, JobFinished
from studio.paths import sample_image
from studio.ui.main_window import MainWindow
from studio.ui.panels.panel_run import PanelRun
from studio.ui.qimage import qimage_to_numpy


@pytest.fixture
def window(qtbot, engine) -> MainWindow:
    w = MainWindow(engine)
    w.ask_save_changes = lambda: "discard"  # teardown closes the window without a dialog
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture
def photo_path(tmp_path: Path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path, pnginfo=_pnginfo())
    return path


def _pnginfo():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "test")
    return info


def wait_for(qtbot, window: MainWindow, kind, timeout: int = 15000):
    with qtbot.waitSignal(
        window.controller.applied, timeout=timeout, check_params_cb=lambda m: isinstance(m, kind)
    ) as blocker:
        pass
    return blocker.args[0]


def test_opens_the_bundled_sample_and_shows_it(window: MainWindow) -> None:
    assert window.open_path(sample_image())
    doc = window.document
    assert (doc.width, doc.height) == (600, 400)
    shown = qimage_to_numpy(window.canvas.doc_item.image)
    np.testing.assert_array_equal(shown[:, :, :3], doc.composite()[:, :, :3])
    assert "sample.jpg" in window.windowTitle()


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.png", None, "no such file"),
        ("zero.png", b"", "empty"),
        ("text.png", b"hello, I am text", "not an image"),
    ],
)
def test_bad_files_show_a_message_box_and_keep_the_document(
    qtbot, window: MainWindow, photo_path: Path, tmp_path: Path, name, content, fragment
) -> None:
    window.open_path(photo_path)
    before = window.document
    if content is not None:
        (tmp_path / name).write_bytes(content)
    assert not window.open_path(tmp_path / name)
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and fragment in boxes[-1].text()
    assert window.document is before


def test_upscale_previews_then_accept_is_one_undo_step(
    qtbot, window: MainWindow, photo_path, photo
) -> None:
    window.open_path(photo_path)
    window.run_panel(PanelRun(UpscaleParams("lanczos", 2, tile=32)))
    wait_for(qtbot, window, JobFinished)
    assert window.canvas.preview_item.isVisible() and window.staging.isVisible()
    assert window.document.width == 128, "nothing is applied before Accept"
    qtbot.keyClick(window, Qt.Key.Key_Return)
    doc = window.document
    assert (doc.width, doc.height) == (256, 192)
    assert doc.history.position == 1 and doc.history.undo_name().startswith("Upscale ×2")
    assert not window.canvas.preview_item.isVisible()
    ref = np.asarray(Image.fromarray(photo).resize((256, 192), Image.LANCZOS))
    assert np.abs(doc.composite()[:, :, :3].astype(int) - ref).max() <= 1
    window.undo()
    np.testing.assert_array_equal(window.document.composite()[:, :, :3], photo)


def test_tiles_reach_the_preview_as_they_finish(
    qtbot, window: MainWindow, photo_path, gates
) -> None:
    window.open_path(photo_path)
    window.controller.submit(FakeParams(tiles=4, gated=True), window.document.composite())
    gates.release(0)
    gates.release(1)
    assert gates.reached[2].wait(10)
    qtbot.waitUntil(lambda: window.canvas.preview_item.isVisible(), timeout=5000)
    preview = qimage_to_numpy(window.canvas.preview_item.image)
    assert (preview[1, :, :3] == 1).all() and (preview[3, :, 3] == 0).all()
    gates.release_all()
    wait_for(qtbot, window, JobFinished)


def test_cancel_button_stops_the_job_and_clears_the_preview(
    qtbot, window: MainWindow, photo_path, gates
) -> None:
    window.open_path(photo_path)
    window.controller.submit(FakeParams(tiles=5, gated=True), window.document.composite())
    assert gates.reached[0].wait(10)
    assert window.cancel_button.isVisible()
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    gates.release_all()
    wait_for(qtbot, window, JobCancelled)
    assert window.controller.staged is None and not window.canvas.preview_item.isVisible()
    assert not window.cancel_button.isVisible()
    assert window.document.history.position == 0


def test_messages_of_a_superseded_job_are_ignored(
    qtbot, window: MainWindow, photo_path, gates
) -> None:
    window.open_path(photo_path)
    image = window.document.composite()
    old = window.controller.submit(FakeParams(tiles=3, gated=True), image)
    assert gates.reached[0].wait(10)
    new = window.controller.submit(UpscaleParams("lanczos", 2, tile=0), image)
    gates.release_all()
    seen = []
    window.controller.applied.connect(lambda m: seen.append(m.job_id))
    wait_for(qtbot, window, JobFinished)
    assert window.controller.dropped > 0
    assert set(seen) == {new} and old not in seen
    assert window.controller.staged.request.job_id == new


def test_escape_discards_the_result(qtbot, window: MainWindow, photo_path) -> None:
    window.open_path(photo_path)
    window.run_panel(PanelRun(UpscaleParams("lanczos", 2)))
    wait_for(qtbot, window, JobFinished)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.controller.staged is None and window.document.width == 128
    assert not window.staging.isVisible()


def test_failed_job_shows_a_box_and_the_app_goes_on(qtbot, window: MainWindow, photo_path) -> None:
    window.open_path(photo_path)
    window.controller.submit(FakeParams(tiles=2, fail_at=1), window.document.composite())
    wait_for(qtbot, window, TERMINAL)
    assert "boom at tile 1" in (window.last_error or "")
    window.run_panel(PanelRun(UpscaleParams("lanczos", 2)))
    wait_for(qtbot, window, JobFinished)


def test_export_keeps_pixels_and_metadata(window: MainWindow, photo_path, tmp_path, photo) -> None:
    window.open_path(photo_path)
    out = tmp_path / "out.png"
    assert window.export_path(out)
    im = Image.open(out)
    assert im.text.get("Author") == "test"
    np.testing.assert_array_equal(np.asarray(im), photo)


def test_dropping_a_file_opens_it(qtbot, window: MainWindow, photo_path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo_path))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert window.document is not None and window.document.width == 128


def test_zoom_fit_and_actual_size(window: MainWindow, photo_path) -> None:
    window.open_path(photo_path)
    window.canvas.actual_size()
    assert window.canvas.zoom == pytest.approx(1.0)
    window.canvas.zoom_by(2.0)
    assert window.canvas.zoom == pytest.approx(2.0)
    window.canvas.fit()
    assert window.zoom_label.text().endswith("%")
