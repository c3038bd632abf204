"""UI test fixtures: settings in a temporary STUDIO_HOME, a 'stamp' task, a window at 100 %."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from fakes import FakeKind, Gates, fake_task
from studio.document import Document
from studio.engine.events import Progress, Result
from studio.engine.runner import JobRunner
from studio.engine.task_table import TaskDef, register, unregister
from studio.geometry import Rect


@pytest.fixture(autouse=True)
def studio_home(tmp_path, monkeypatch):
    """Every UI test reads and writes settings in its own folder."""
    home = tmp_path / "studio-home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def free_widgets_on_the_gui_thread(qapp):
    """After each UI test, once qtbot has closed its widgets: delete them and collect their
    reference cycles here, on the GUI thread.

    Left to a later cyclic garbage collection, they may be freed on the engine's worker
    thread (its model cache calls ``gc.collect()`` after an eviction, and automatic
    collections run on whichever thread allocates), and freeing Qt widgets off the GUI
    thread crashes. One clean-clone CI run segfaulted so, inside ``_make_room``, during
    test_stylize_panel.
    """
    yield
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@dataclass(frozen=True)
class StampParams:
    """Paints ``rect`` of the input with ``color``; waits for gate 0 when ``gated``."""

    rect: tuple[int, int, int, int] = (0, 0, 8, 8)
    color: tuple[int, int, int] = (0, 255, 0)
    seed: int = 0
    gated: bool = False

    task: ClassVar[FakeKind] = FakeKind.STAMP


def make_stamp_task(gates: Gates):
    def stamp_task(request, ctx):
        p: StampParams = request.params
        yield Progress(0, 1, "stamp")
        if p.gated:
            gates.reached[0].set()
            assert gates.events[0].wait(10), "test never released the gate"
        ctx.cancel.check()
        out = request.image[:, :, :3].copy()
        out[Rect(*p.rect).slices] = p.color
        h, w = out.shape[:2]
        return Result(out, Rect(0, 0, w, h), {"seed": p.seed})

    return stamp_task


@pytest.fixture
def fake_runner_factory(gates: Gates):
    """Runners, with the 'fake' and 'stamp' tasks registered besides the real ones."""
    register(fake_task(gates))
    register(TaskDef(FakeKind.STAMP, "Stamp", StampParams, make_stamp_task(gates)))
    yield JobRunner
    unregister(FakeKind.FAKE)
    unregister(FakeKind.STAMP)


@pytest.fixture
def win(qtbot, engine, photo):
    """A main window showing the 128x96 test photo at 100 %, top-left corner in view."""
    from studio.ui.main_window import MainWindow

    w = MainWindow(engine)
    w.ask_save_changes = lambda: "discard"  # closing at teardown never blocks on a dialog
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    doc = Document.from_image(photo, "photo")
    doc.mark_clean()
    w.set_document(doc)
    w.canvas.actual_size()
    return w


class Pointer:
    """Drives real mouse events through qtbot on a canvas, in document coordinates."""

    def __init__(self, qtbot, canvas) -> None:
        self.qtbot = qtbot
        self.canvas = canvas

    def at(self, x: float, y: float) -> QPoint:
        """Viewport pixel that shows document point (x, y)."""
        return self.canvas.mapFromScene(QPointF(x, y))

    def drag(self, points, modifiers=Qt.KeyboardModifier.NoModifier, button=None) -> None:
        """Press at the first point, move through the others, release at the last."""
        button = button or Qt.MouseButton.LeftButton
        vp = self.canvas.viewport()
        pts = [self.at(x, y) for x, y in points]
        self.qtbot.mousePress(vp, button, modifiers, pts[0])
        for p in pts[1:]:
            self.qtbot.mouseMove(vp, p)
        self.qtbot.mouseRelease(vp, button, modifiers, pts[-1])

    def click(self, x: float, y: float, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
        self.qtbot.mouseClick(
            self.canvas.viewport(), Qt.MouseButton.LeftButton, modifiers, self.at(x, y)
        )

    def rendered(self) -> np.ndarray:
        """What the canvas viewport shows, as RGBA uint8 (viewport pixels)."""
        from studio.ui.qimage import qimage_to_numpy

        return qimage_to_numpy(self.canvas.viewport().grab().toImage())


@pytest.fixture
def pointer(qtbot, win) -> Pointer:
    return Pointer(qtbot, win.canvas)


@pytest.fixture
def stamp():
    """The parameter class of the 'stamp' task (paints a rectangle of the input)."""
    return StampParams


@pytest.fixture
def photo_file(tmp_path, photo):
    """The test photo saved as a PNG."""
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path
