"""Recovery for real: an editor in another process is edited, autosaves, and is killed with
SIGKILL; the next launch offers the document (Keep for later keeps it) and restores it exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from studio.document import Document, Layer
from studio.geometry import Rect

EDITS = '''
def edit(doc):
    """Paint on two layers, hide one, mask a corner: what a crash must not lose."""
    import numpy as np
    from studio.document import Layer
    from studio.geometry import Rect
    base = doc.layers[0]
    doc.apply_pixels(base.id, Rect(3, 4, 20, 10), np.full((10, 20, 4), 222, np.uint8), "Paint")
    ink = doc.add_layer(Layer.blank(doc.width, doc.height, "Ink"))
    stroke = np.zeros((12, 30, 4), np.uint8)
    stroke[:] = (10, 200, 30, 180)
    doc.apply_pixels(ink.id, Rect(40, 50, 30, 12), stroke, "Ink")
    doc.set_layer_props(ink.id, "Fade", opacity=0.7)
    doc.add_layer(Layer.blank(doc.width, doc.height, "Hidden"))
    doc.set_layer_props(doc.active_layer.id, "Hide", visible=False)
    doc.set_mask(np.pad(np.ones((8, 8), np.float32), ((0, 88), (0, 120))), "Mask")
'''

EDITOR = (
    EDITS
    + """
import os, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from studio.engine.thread import EngineThread
from studio.settings import Settings
from studio.ui.main_window import MainWindow

app = QApplication([])
settings = Settings()
settings.autosave_seconds = 0.3  # "every two minutes" in use; tiny here
win = MainWindow(EngineThread(interactive=True), settings)
win.show()
assert win.open_path(sys.argv[1])
edit(win.document)
ora = win.recovery.folder / f"{win.recovery_key}.ora"

def report():
    if ora.exists():
        print("autosaved", flush=True)
        poll.stop()

poll = QTimer()
poll.timeout.connect(report)
poll.start(50)
app.exec()
"""
)


def _expected(photo_path: Path) -> Document:
    namespace: dict = {}
    exec(EDITS, namespace)  # the very edits the killed editor made
    doc = Document.from_image(np.asarray(Image.open(photo_path)), photo_path.stem)
    namespace["edit"](doc)
    return doc


def test_killed_editor_is_offered_and_restored_exactly(
    qtbot, engine, photo, studio_home: Path, tmp_path: Path
) -> None:
    photo_path = tmp_path / "photo.png"
    Image.fromarray(photo).save(photo_path)
    env = {**os.environ, "STUDIO_HOME": str(studio_home), "QT_QPA_PLATFORM": "offscreen"}
    editor = subprocess.Popen(
        [sys.executable, "-c", EDITOR, str(photo_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert editor.stdout is not None
        assert editor.stdout.readline().strip() == "autosaved"
    finally:
        editor.send_signal(signal.SIGKILL)
        editor.wait(timeout=30)
    assert editor.returncode == -signal.SIGKILL

    from studio.ui.main_window import MainWindow

    def launch() -> MainWindow:
        win = MainWindow(engine)
        win.ask_save_changes = lambda: "discard"
        qtbot.addWidget(win)
        return win

    offered = []
    first = launch()
    first.ask_recovery = lambda entry: offered.append(entry) or "keep"
    assert not first.offer_recovery()
    [entry] = offered
    assert entry.title == "photo.png" and entry.thumbnail_png()
    second = launch()
    second.ask_recovery = lambda entry: "restore"
    assert second.offer_recovery(), "'Keep for later' kept it for this launch"
    doc, expected = second.document, _expected(photo_path)
    assert [(x.name, x.opacity, x.visible) for x in doc.layers] == [
        (x.name, x.opacity, x.visible) for x in expected.layers
    ]
    for got, want in zip(doc.layers, expected.layers, strict=True):
        np.testing.assert_array_equal(got.pixels, want.pixels, err_msg=want.name)
    np.testing.assert_array_equal(doc.mask, expected.mask)
    assert doc.is_modified and second.windowTitle().startswith("*photo.png")
    assert entry.path.exists(), "the recovery file stays until the work is saved"
    assert second.save_project_path(tmp_path / "recovered.ora")
    assert not entry.path.exists()
    assert list((studio_home / "recovery").iterdir()) == []


def test_discard_removes_the_recovery_file(qtbot, engine, studio_home: Path) -> None:
    from studio.recovery import RecoveryStore
    from studio.ui.main_window import MainWindow

    doc = Document.from_image(np.zeros((8, 8, 3), np.uint8))
    doc.mark_clean()
    doc.add_layer(Layer.blank(8, 8, "x"))
    doc.apply_pixels(doc.active_layer.id, Rect(0, 0, 2, 2), np.ones((2, 2, 4), np.uint8), "p")
    store = RecoveryStore(studio_home / "recovery")
    store.autosave(doc, "deadbeef")
    sidecar = studio_home / "recovery" / "deadbeef.json"
    sidecar.write_text(sidecar.read_text().replace(f'"pid": {os.getpid()}', '"pid": null'))
    win = MainWindow(engine)
    qtbot.addWidget(win)
    win.ask_recovery = lambda entry: "discard"
    assert not win.offer_recovery()
    assert list((studio_home / "recovery").iterdir()) == []
