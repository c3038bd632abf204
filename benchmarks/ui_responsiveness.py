"""How long does the UI thread stall while the engine runs a CPU-heavy job?

A 5 ms QTimer on the GUI thread records the gaps between its ticks while the engine thread runs
a ~5 s neural upscale (a random-init SRVGG x4 net, 64 features, 16 convs, over 128 px tiles of a
512x512 image) whose tiles stream into the main window's preview overlay, as in real use.
Conditions: idle (no job), the engine with one core left to the UI (Studio's policy when the GUI
runs), and the engine using every core. Prints max, 99th percentile and mean gap.

    QT_QPA_PLATFORM=offscreen python benchmarks/ui_responsiveness.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from studio.engine.events import Result
from studio.engine.messages import TERMINAL
from studio.engine.runner import JobRunner
from studio.engine.thread import EngineThread
from studio.engine.tiling import run_tiled
from studio.geometry import Rect
from studio.models.arch import LoadedModel
from studio.models.archs.srvgg import SRVGGNetCompact
from studio.models.descriptor import ImageModel
from studio.ui.main_window import MainWindow


@dataclass(frozen=True)
class HeavyParams:
    seconds: float = 5.0
    task = "heavy"


def heavy_task(request, ctx):
    torch.manual_seed(0)
    net = SRVGGNetCompact(nf=64, num_conv=16, scale=4)
    model = ImageModel(LoadedModel(net, "srvgg", scale=4), ctx.device)
    image = request.image[:, :, :3].astype(np.float32) / 255
    deadline = time.perf_counter() + request.params.seconds
    out = None
    while time.perf_counter() < deadline:
        out = yield from run_tiled(
            image,
            model,
            scale=4,
            tile=128,
            pad=8,
            cancel=ctx.cancel,
            quantize=lambda x: (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8),
            out_dtype=np.uint8,
        )
    h, w = out.shape[:2]
    return Result(out, Rect(0, 0, w, h))


def runner_factory() -> JobRunner:
    runner = JobRunner()
    runner.tasks["heavy"] = heavy_task
    return runner


def measure(app: QApplication, window: MainWindow | None, seconds: float) -> np.ndarray:
    """Timer gaps (ms) for ``seconds`` of wall time, with a heavy job if ``window`` is given."""
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    done = [False]
    if window is not None:
        window.controller.applied.connect(
            lambda m: done.__setitem__(0, done[0] or isinstance(m, TERMINAL))
        )
        window.controller.submit(HeavyParams(seconds), window.document.composite())
    timer.start()
    last[0] = time.perf_counter()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or (window is not None and not done[0]):
        app.processEvents()
        time.sleep(0.0005)
    timer.stop()
    return np.array(gaps[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    cores = os.cpu_count() or 1
    rows = [("idle (no job)", measure(app, None, args.seconds), 0)]
    for label, interactive in (
        (f"engine on {max(1, cores - 1)} of {cores} cores (GUI policy)", True),
        (f"engine on all {cores} cores", False),
    ):
        engine = EngineThread(runner_factory, interactive=interactive)
        engine.start()
        window = MainWindow(engine)
        window.show()
        window.open_path(os.path.join(os.path.dirname(__file__), "..", "resources", "sample.jpg"))
        rows.append((label, measure(app, window, args.seconds), 1))
        engine.shutdown()
        window.close()
    print(f"{'condition':<40} {'ticks':>6} {'max ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for label, gaps, _ in rows:
        print(
            f"{label:<40} {len(gaps):>6} {gaps.max():>8.1f} {np.percentile(gaps, 99):>8.1f} "
            f"{gaps.mean():>8.2f}"
        )
    gui = rows[1][1]
    print(
        f"\ntarget: max stall < 50 ms; frame budget 16 ms. GUI policy: max {gui.max():.1f} ms "
        f"= {gui.max() / 16:.1f} frames, p99 {np.percentile(gui, 99):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
