"""How long does an autosave hold up the GUI thread?

A 4096x3072 document with three photo-like layers is autosaved at compression level 1, as the
editor does every two minutes. A 5 ms QTimer on the GUI thread records the gaps between its
ticks from the moment the autosave starts until its file is written. Rows:

* ``on GUI thread``: the old way, the project written from the timer on the GUI thread;
* ``worker, first``: the editor's way (:class:`FileCommands`), first autosave: every layer and
  the mask are copied into new memory on the GUI thread, the worker encodes and writes;
* ``worker, 1 layer``: after a stroke on one layer: only that layer is copied again, into the
  buffer kept from the previous autosave;
* ``worker, all``: after edits to every layer and the mask.

Prints the longest gap, the 99th percentile, the snapshot's own cost and the total time.

    QT_QPA_PLATFORM=offscreen python benchmarks/autosave_responsiveness.py [--width 4096]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

from studio.document import MASK, Document, Layer
from studio.document.ora import save_project
from studio.geometry import Rect
from studio.recovery import AUTOSAVE_COMPRESS_LEVEL, RecoveryStore
from studio.settings import Settings
from studio.ui.file_commands import FileCommands


class Host(FileCommands, QMainWindow):
    """Just what the File commands' autosave needs from the main window."""

    def __init__(self, doc: Document, folder: Path) -> None:
        super().__init__()
        self.settings = Settings()
        self.settings.autosave_seconds = 3600.0  # started by hand below
        self.document = doc
        self._init_file_commands()
        self.recovery = RecoveryStore(folder)


def photo_layer(width: int, height: int, seed: int) -> Layer:
    """Smooth gradients with grain, as a photograph compresses."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    rgba = np.empty((height, width, 4), np.uint8)
    for c, (a, b) in enumerate(((180, 40), (60, 150), (120, 90))):
        grain = rng.integers(0, 12, (height, width), dtype=np.uint8)
        rgba[:, :, c] = (a * x + b * y + 20 * np.sin(9 * x + 5 * c * y)).astype(np.uint8) + grain
    rgba[:, :, 3] = 255
    return Layer(rgba, f"Layer {seed}")


def edit(doc: Document, layer_ids: list[int], mask: bool, value: int) -> None:
    patch = np.full((256, 256, 4), value, np.uint8)
    for i, layer_id in enumerate(layer_ids):
        doc.apply_pixels(layer_id, Rect(100 + 300 * i, 100, 256, 256), patch, "Stroke")
    if mask:
        doc.apply_pixels(MASK, Rect(50, 50, 64, 64), np.ones((64, 64), np.float32), "Mask")


def host_idle(host: Host):
    return lambda: not host.autosave_running()


def measure(app: QApplication, start, done) -> tuple[float, float, float, float]:
    """(longest gap, 99th percentile gap, start's own time, total) in ms."""
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.perf_counter()
    ticks.append(t0)
    start()
    started = time.perf_counter()
    while not done():
        app.processEvents()
        time.sleep(0.001)
    ticks.append(time.perf_counter())
    timer.stop()
    gaps = np.diff(ticks) * 1000
    return gaps.max(), np.percentile(gaps, 99), (started - t0) * 1000, (ticks[-1] - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--height", type=int, default=3072)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    doc = Document(args.width, args.height)
    doc.layers = [photo_layer(args.width, args.height, seed) for seed in range(3)]
    doc.mark_clean()
    ids = [layer.id for layer in doc.layers]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        host = Host(doc, Path(folder))
        edit(doc, ids[:1], False, 10)
        flag: list[bool] = []
        old = Path(folder) / "old.ora"
        start = lambda: flag.append(save_project(doc, old, AUTOSAVE_COMPRESS_LEVEL))  # noqa: E731
        rows.append(("on GUI thread", *measure(app, start, lambda: bool(flag))))
        cases = (("worker, first", ids, True), ("worker, 1 layer", ids[:1], False))
        for value, (name, layers, mask) in enumerate((*cases, ("worker, all", ids, True))):
            edit(doc, layers, mask, 20 + value)
            rows.append((name, *measure(app, host.autosave_now, host_idle(host))))
            host.wait_for_autosave()
        host.stop_autosave()
    print(f"autosave of {args.width}x{args.height}, 3 layers + mask, compression level 1")
    print(f"{'':16} {'max gap':>8} {'p99 gap':>8} {'GUI part':>9} {'total':>8}   (ms)")
    for name, worst, p99, gui, total in rows:
        print(f"{name:16} {worst:8.0f} {p99:8.0f} {gui:9.0f} {total:8.0f}")


if __name__ == "__main__":
    main()
