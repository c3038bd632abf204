"""The Qt binding must not drain the reference counts of ``True`` and ``None``.

PySide6 6.12.0 on Python 3.11 drops one reference to ``True`` on every ``Signal.emit()`` and
references to ``None`` on many other calls (about 12 and 200 per brush stroke in the editor);
when a count reaches zero the interpreter aborts with ``Fatal Python error: bool_dealloc`` or
``none_dealloc``. The editor died so after 100-150 brush strokes. Reported upstream as
PYSIDE-3474. From Python 3.12 on ``True`` and ``None`` are immortal: their counts never change,
so these tests pass there whatever the binding does.

The tests measure in batches and stop at the first batch that lost more than
:data:`TOLERANCE` references, long before a count could reach zero, so a bad binding fails them
instead of aborting the test run. See :func:`RefcountWatch.check` for what happens then.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass

import numpy as np
import PySide6
from PySide6.QtCore import QObject, QThread, Signal, Slot

# References to True or None that unrelated code (caches, Qt internals, the garbage
# collector) may take or drop while a test runs; the bad binding loses one per emit.
TOLERANCE = 50
BATCH = 100  # emits between two checks
WATCHED = {"True": True, "None": None}


class RefcountWatch:
    """How many references to ``True`` and ``None`` were lost since it was made."""

    def __init__(self) -> None:
        self.start = {name: sys.getrefcount(obj) for name, obj in WATCHED.items()}

    def lost(self) -> dict[str, int]:
        return {name: self.start[name] - sys.getrefcount(obj) for name, obj in WATCHED.items()}

    def check(self, done: str) -> None:
        """Fail if more than TOLERANCE references went missing during ``done``.

        Before failing, the missing references are given back (deliberately leaked with
        Py_IncRef): otherwise the interpreter would still abort when it frees the real holders
        at exit, and the failure report would end in a core dump.
        """
        lost = self.lost()
        if max(lost.values()) <= TOLERANCE:
            return
        for name, n in lost.items():
            for _ in range(max(n, 0)):
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(WATCHED[name]))
        raise AssertionError(
            f"PySide6 {PySide6.__version__} lost references {lost} during {done} "
            f"(allowed: {TOLERANCE} for unrelated noise): on Python < 3.12 the interpreter "
            "aborts (bool_dealloc / none_dealloc) once a count reaches zero; "
            'install "PySide6-Essentials<6.12" (PYSIDE-3474)'
        )


@dataclass(frozen=True)
class Message:
    """A typed value such as the engine sends: some fields are True or None."""

    job_id: int
    final: bool = True
    error: str | None = None


class Sender(QObject):
    message = Signal(object)


class Receiver(QObject):
    """Lives on the GUI thread; says when it has received ``expected`` messages."""

    received_all = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.expected = 0
        self.last: Message | None = None

    @Slot(object)
    def on_message(self, message: Message) -> None:
        self.count += 1
        self.last = message
        if self.count == self.expected:
            self.received_all.emit()


def test_emitting_on_one_thread_keeps_true_and_none_alive(qapp) -> None:
    sender, receiver = Sender(), Receiver()
    sender.message.connect(receiver.on_message)
    watch = RefcountWatch()
    for batch in range(30):
        for i in range(BATCH):
            sender.message.emit(Message(batch * BATCH + i))
        watch.check(f"{(batch + 1) * BATCH} same-thread emits")
    assert receiver.count == 30 * BATCH
    assert receiver.last == Message(30 * BATCH - 1)


class Worker(QObject):
    """Lives on a QThread; emits ``n`` messages each time it is asked to."""

    message = Signal(object)

    @Slot(int)
    def emit_batch(self, n: int) -> None:
        for i in range(n):
            self.message.emit(Message(i, final=i == n - 1))


class Boss(QObject):
    ask = Signal(int)


def test_emitting_from_a_worker_thread_keeps_true_and_none_alive(qtbot) -> None:
    thread = QThread()
    worker, boss, receiver = Worker(), Boss(), Receiver()
    worker.moveToThread(thread)
    boss.ask.connect(worker.emit_batch)  # queued: runs on the worker thread
    worker.message.connect(receiver.on_message)  # queued: runs on the GUI thread
    thread.start()
    try:
        watch = RefcountWatch()
        for batch in range(20):
            receiver.expected = (batch + 1) * BATCH
            with qtbot.waitSignal(receiver.received_all, timeout=10000):
                boss.ask.emit(BATCH)
            watch.check(f"{receiver.expected} emits from a worker thread")
        assert receiver.count == 20 * BATCH
        assert receiver.last == Message(BATCH - 1, final=True)
    finally:
        thread.quit()
        assert thread.wait(10000), "worker thread did not stop"


def test_a_long_painting_session_keeps_the_editor_alive(win, pointer, qapp, photo) -> None:
    """Several hundred real strokes: the editor stays up, every stroke is one undo step."""
    strokes = 300
    rng = np.random.default_rng(7)
    watch = RefcountWatch()
    for n in range(strokes):
        # a colour of its own, so every stroke changes pixels and makes one undo step
        color = (n % 256, n // 256, 255)
        win.tools.set_brush("paint", size=3, hardness=1.0, color=color, opacity=1.0)
        x0, y0 = rng.integers(4, 124), rng.integers(4, 92)
        x1, y1 = rng.integers(4, 124), rng.integers(4, 92)
        before_last = win.document.active_layer.pixels.copy()
        pointer.drag([(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in np.linspace(0, 1, 12)])
        # every stroke: one cost the bad binding about 12 references to True and 200 to None
        watch.check(f"{n + 1} brush strokes")
    qapp.processEvents()
    watch.check(f"{strokes} brush strokes")

    doc = win.document
    assert win.isVisible()
    assert doc.is_modified
    px = doc.active_layer.pixels
    assert (px[:, :, :3] != photo).any(axis=2).mean() > 0.2, "the strokes painted the image"
    # the canvas still draws: at 100 % zoom it shows the last stroke's pixels exactly (checked
    # where the stroke is farthest from the pointer, away from the brush cursor outline)
    ys, xs = np.nonzero((px[:, :, :3] == color).all(axis=2))
    far = np.argmax((xs - x1) ** 2 + (ys - y1) ** 2)
    x, y = int(xs[far]), int(ys[far])
    p = pointer.at(x, y)
    assert tuple(pointer.rendered()[p.y(), p.x(), :3]) == color, f"canvas shows ({x}, {y})"
    history = doc.history
    assert history.position == len(history.steps) == strokes - history.dropped
    assert {s.name for s in history.steps} == {"Brush"}
    assert win.history_panel.list.count() == len(history.steps) + 1
    painted = px.copy()
    win.undo()
    assert history.position == len(history.steps) - 1
    np.testing.assert_array_equal(doc.active_layer.pixels, before_last, "undo: last stroke gone")
    win.redo()
    np.testing.assert_array_equal(doc.active_layer.pixels, painted, "redo: last stroke back")
