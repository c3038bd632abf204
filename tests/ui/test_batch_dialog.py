"""The Batch dialog: the current panel's settings over a folder, on a thread of its own.

A fake batch core (planning from a list of names, outcomes released one gate at a time) stands
in for the real one, so these tests say what the dialog does, not what a model does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.engine.batch.contract import BatchItem, BatchSpec, ItemOutcome
from studio.engine.messages import JobFinished
from studio.errors import BadInputError
from studio.task_kind import TaskKind
from studio.ui.batch_dialog import BatchDialog, show_batch_dialog
from studio.ui.batch_run import (
    LIVE_BATCH_THREADS,
    BatchCount,
    BatchEnded,
    BatchFolders,
    BatchPlan,
    describe_params,
    plan_text,
)

WAIT_MS = 10000


class FakeCore:
    """Plans ``names`` (``done`` of them already done); fails the names in ``bad``; with
    ``gated``, item i waits for ``release(i)`` before it finishes."""

    def __init__(self, names: list[str], bad: dict[str, str] | None = None, gated=False, done=0):
        self.names, self.bad, self.gated, self.done = names, bad or {}, gated, done
        self.plans: list[tuple[object, BatchFolders]] = []
        self.started: list[str] = []
        self.closed = threading.Event()
        self.reached = [threading.Event() for _ in names]
        self.gates = [threading.Event() for _ in names]

    def release(self, i: int) -> None:
        self.gates[i].set()

    def release_all(self) -> None:
        for g in self.gates:
            g.set()

    def plan(self, params, folders: BatchFolders) -> BatchPlan:
        self.plans.append((params, folders))
        if folders.in_dir and folders.in_dir.endswith("missing"):
            raise BadInputError(f"{folders.in_dir}: no such folder")
        spec = BatchSpec(task=params.task, params=params, out_dir=folders.out_dir, options_hash="h")
        items = tuple(BatchItem(n, n + ".png", source=n) for n in self.names[self.done :])
        return BatchPlan(spec, items, done=self.done, estimate_s=2.0 * len(items))

    def run(self, plan: BatchPlan, items: Iterable[BatchItem]) -> Iterator[ItemOutcome]:
        try:
            for i, item in enumerate(items):
                self.started.append(item.key)
                self.reached[i].set()
                if self.gated:
                    assert self.gates[i].wait(10), "test never released the gate"
                if item.key in self.bad:
                    yield ItemOutcome(item.key, ok=False, reason=self.bad[item.key])
                else:
                    yield ItemOutcome(item.key, ok=True, output=item.output)
        finally:
            self.closed.set()


@pytest.fixture(autouse=True)
def no_dangling_batch_threads():
    yield
    running = [t for t in list(LIVE_BATCH_THREADS) if t.isRunning()]
    for t in running:
        t.cancel()
        t.wait(5000)
    assert not running, f"{len(running)} batch thread(s) left running by the test"


@pytest.fixture
def folders(tmp_path):
    (tmp_path / "in").mkdir()
    return str(tmp_path / "in"), str(tmp_path / "out")


def open_for(win, title: str, core: FakeCore) -> BatchDialog:
    """Switch the Tasks dock to ``title`` and choose File ▸ Batch… (with the fake core)."""
    tabs = win.task_tabs
    tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == title))
    win.batch_dialog = BatchDialog(core, win)
    win.batch_dialog.ask_stop = lambda: True  # closing at teardown never blocks on a question
    win.actions["batch"].trigger()
    return win.batch_dialog


def replan(qtbot, dialog: BatchDialog) -> None:
    """Plan now and wait until the dialog shows the plan (planning runs off the GUI thread)."""
    with qtbot.waitSignal(dialog.planned, timeout=WAIT_MS):
        dialog.refresh_plan()


def fill(qtbot, dialog: BatchDialog, in_dir: str, out_dir: str) -> None:
    dialog.in_dir.setText(in_dir)
    dialog.out_dir.setText(out_dir)
    replan(qtbot, dialog)


def test_the_dialog_takes_the_current_panels_settings(qtbot, win, folders) -> None:
    win.upscale_panel.scale.setValue(3)
    core = FakeCore(["a", "b"])
    dialog = open_for(win, "Upscale", core)
    assert dialog.isVisible()
    assert dialog.params == win.upscale_panel.params()
    assert dialog.params.scale == 3
    assert "Upscale" in dialog.windowTitle() and "scale 3" in dialog.task_label.text()
    fill(qtbot, dialog, *folders)
    params, asked = core.plans[-1]
    assert params == win.upscale_panel.params()
    assert asked == BatchFolders(in_dir=folders[0], out_dir=folders[1])
    assert dialog.plan_label.text() == "2 files to do · about 4 s"
    assert dialog.start_button.isEnabled()


def test_inpaint_asks_for_masks_and_generate_for_a_prompt_list(
    qtbot, win, folders, tmp_path
) -> None:
    core = FakeCore(["a"])
    dialog = open_for(win, "Inpaint", core)
    assert dialog.task == TaskKind.INPAINT and dialog.params == win.inpaint_panel.params()
    assert dialog.form.isRowVisible(dialog.masks) and not dialog.form.isRowVisible(dialog.prompts)
    fill(qtbot, dialog, *folders)
    assert "Choose the masks" in dialog.plan_label.text()
    assert not dialog.start_button.isEnabled()
    dialog.masks.setText(str(tmp_path / "masks"))
    replan(qtbot, dialog)
    assert core.plans[-1][1].masks == str(tmp_path / "masks") and core.plans[-1][1].mask is None
    dialog.mask_kind.setCurrentIndex(1)  # one mask for every image
    dialog.masks.setText(str(tmp_path / "m.png"))
    replan(qtbot, dialog)
    assert core.plans[-1][1].mask == str(tmp_path / "m.png") and core.plans[-1][1].masks is None

    win.batch_dialog.close()
    tabs = win.task_tabs
    tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Generate"))
    win.actions["batch"].trigger()
    assert dialog.task == TaskKind.GENERATE and dialog.params == win.generate_panel.params()
    assert dialog.form.isRowVisible(dialog.prompts)
    assert not dialog.form.isRowVisible(dialog.in_dir)
    dialog.prompts.setText(str(tmp_path / "prompts.txt"))
    replan(qtbot, dialog)
    assert core.plans[-1][1] == BatchFolders(
        out_dir=folders[1], prompts=str(tmp_path / "prompts.txt")
    )


def test_a_folder_it_cannot_use_is_said_once_and_nothing_starts(qtbot, win, folders) -> None:
    dialog = open_for(win, "Upscale", FakeCore(["a"]))
    fill(qtbot, dialog, folders[0] + "/missing", folders[1])
    assert dialog.plan_label.text().endswith("missing: no such folder")
    assert not dialog.start_button.isEnabled()
    assert dialog.start() is False and not dialog.running


def test_progress_arrives_in_order_with_count_rate_and_failures(qtbot, win, folders) -> None:
    core = FakeCore(["a", "b", "c", "d"], bad={"b": "not an image: cannot identify file"})
    dialog = open_for(win, "Upscale", core)
    fill(qtbot, dialog, *folders)
    seen: list[tuple[int, int, int]] = []
    dialog.progressed.connect(lambda n, total: seen.append((n, total, dialog.progress.value())))
    with qtbot.waitSignal(dialog.ended, timeout=WAIT_MS) as ended:
        assert dialog.start()
    assert seen == [(1, 4, 1), (2, 4, 2), (3, 4, 3), (4, 4, 4)]
    end: BatchEnded = ended.args[0]
    assert (end.ok, end.failed, end.total, end.cancelled, end.error) == (3, 1, 4, False, None)
    assert dialog.failures.isVisible()
    assert [dialog.failures.item(i).text() for i in range(dialog.failures.count())] == [
        "b — not an image: cannot identify file"
    ]
    assert dialog.progress_label.text() == "Done: 3 written, 1 failed"
    assert core.closed.is_set() and not dialog.running
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled())  # the same files planned again


def test_cancel_stops_between_files(qtbot, win, folders) -> None:
    core = FakeCore(["a", "b", "c", "d"], gated=True)
    dialog = open_for(win, "Upscale", core)
    fill(qtbot, dialog, *folders)
    assert dialog.start()
    core.release(0)
    assert core.reached[1].wait(5)  # "a" finished, "b" is being processed
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not dialog.cancel_button.isEnabled()
    assert "stopping after this file" in dialog.progress_label.text()
    with qtbot.waitSignal(dialog.ended, timeout=WAIT_MS) as ended:
        core.release(1)
    assert core.started == ["a", "b"]  # "c" never started
    end: BatchEnded = ended.args[0]
    assert end.cancelled and end.ok == 2 and end.total == 4
    assert dialog.progress.value() == 2
    assert dialog.progress_label.text().startswith("Cancelled at 2/4")
    assert core.closed.is_set()


def test_the_editor_keeps_working_while_a_batch_runs(qtbot, win, folders, stamp) -> None:
    core = FakeCore(["a", "b"], gated=True)
    dialog = open_for(win, "Upscale", core)
    fill(qtbot, dialog, *folders)
    assert dialog.start()
    assert core.reached[0].wait(5)  # the batch is stuck inside its first file
    with qtbot.waitSignal(
        win.controller.applied,
        timeout=WAIT_MS,
        check_params_cb=lambda m: isinstance(m, JobFinished),
    ):
        win.controller.submit(stamp(), win.document.composite())
    assert win.controller.staged is not None  # an edit ran and finished meanwhile
    assert dialog.running and dialog.progress.value() == 0
    with qtbot.waitSignal(dialog.ended, timeout=WAIT_MS):
        core.release_all()


def test_closing_the_dialog_keeps_the_batch_going(qtbot, win, folders) -> None:
    core = FakeCore(["a", "b", "c"], gated=True)
    dialog = open_for(win, "Upscale", core)
    fill(qtbot, dialog, *folders)
    assert dialog.start()
    assert core.reached[0].wait(5)
    dialog.close()
    assert not dialog.isVisible() and dialog.running
    win.upscale_panel.scale.setValue(4)
    win.actions["batch"].trigger()  # shows the running batch, with the settings it started with
    assert dialog.isVisible() and dialog.params.scale != 4
    with qtbot.waitSignal(dialog.ended, timeout=WAIT_MS) as ended:
        core.release_all()
    assert ended.args[0].ok == 3 and core.started == ["a", "b", "c"]
    win.actions["batch"].trigger()  # idle again: the panel's settings now
    assert dialog.params.scale == 4


@pytest.mark.parametrize("answer", [False, True])
def test_quitting_asks_to_stop_a_running_batch(qtbot, win, folders, answer) -> None:
    core = FakeCore(["a", "b", "c"], gated=True)
    dialog = open_for(win, "Upscale", core)
    fill(qtbot, dialog, *folders)
    assert dialog.start()
    assert core.reached[0].wait(5)
    asked = []
    dialog.ask_stop = lambda: asked.append(True) or answer
    threading.Timer(0.2, core.release_all).start()  # the file in hand finishes meanwhile
    win.close()
    assert asked == [True]
    if not answer:  # the editor and the batch go on
        assert win.isVisible() and dialog.running
        with qtbot.waitSignal(dialog.ended, timeout=WAIT_MS):
            pass
        return
    assert not win.isVisible()
    assert not dialog.thread.isRunning()  # stopped between files, waited for
    assert core.started == ["a"] and core.closed.is_set()
    QApplication.processEvents()


def test_a_resumed_folder_shows_what_is_done(qtbot, win, folders) -> None:
    dialog = open_for(win, "Upscale", FakeCore(["a", "b", "c"], done=3))
    fill(qtbot, dialog, *folders)
    assert dialog.plan_label.text() == "0 files to do · 3 already done: every file is done"
    assert not dialog.start_button.isEnabled()


def test_count_rate_and_time_left() -> None:
    count = BatchCount(total=10, started=100.0)
    assert count.text(now=101.0) == "0/10"
    for key in "abcd":
        count.add(ItemOutcome(key, ok=key != "c", reason="bad"))
    assert count.rate(now=102.0) == 2.0
    assert count.eta_s(now=102.0) == 3.0
    assert count.text(now=102.0) == "4/10 · 2.00 files/s · 3 s left · 1 failed"
    spec = BatchSpec(task=TaskKind.UPSCALE, params=None, out_dir="o", options_hash="h")
    plan = BatchPlan(spec, (BatchItem("a", "a.png"),), done=2, redo=1, estimate_s=130.0)
    assert plan_text(plan) == (
        "1 file to do, 1 of them again (failed or changed before) · 2 already done · "
        "about 2 min 10 s"
    )


def test_show_batch_dialog_reuses_one_dialog(win) -> None:
    first = show_batch_dialog(win, FakeCore([]))
    assert show_batch_dialog(win) is first


def test_the_real_core_runs_a_folder_in_worker_processes(qtbot, win, tmp_path) -> None:
    """The default backend: worker processes, one manifest record per file, a corrupt file
    listed with its reason, and the next plan of the same folder finds everything done."""
    from PIL import Image

    from studio.engine.batch.manifest import Manifest
    from studio.ui.batch_core import CoreBackend

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8)).save(in_dir / f"{name}.png")
    (in_dir / "broken.png").write_bytes(b"not a png")
    win.upscale_panel.model.select("lanczos")
    win.upscale_panel.scale.setValue(2)
    dialog = open_for(win, "Upscale", CoreBackend(workers=1))
    assert dialog.params.model == "lanczos"
    fill(qtbot, dialog, str(in_dir), str(out_dir))
    assert dialog.plan_label.text().startswith("3 files to do")
    ends: list[BatchEnded] = []
    dialog.ended.connect(ends.append)
    with qtbot.waitSignals([dialog.ended, dialog.planned], timeout=120000):
        assert dialog.start()
    (end,) = ends
    assert (end.ok, end.failed, end.error) == (2, 1, None)
    failure = dialog.failures.item(0)
    assert failure.text().startswith("broken.png — ") and str(in_dir) not in failure.text()
    assert str(in_dir / "broken.png") in failure.toolTip()  # the whole reason
    for name in ("a", "b"):
        with Image.open(out_dir / f"{name}.png") as out:
            assert out.size == (32, 24)
    assert set(Manifest(out_dir).records()) == {"a.png", "b.png", "broken.png"}
    assert dialog.plan_label.text().startswith("1 file to do, 1 of them again")
    assert "2 already done" in dialog.plan_label.text()
    assert dialog.progress.text() == "3/3"  # the bar keeps how the run ended


def test_planning_runs_off_the_gui_thread_and_a_stale_plan_is_dropped(qtbot, win, folders):
    class SlowPlans(FakeCore):
        def __init__(self) -> None:
            super().__init__(["a", "b"])
            self.first_asked, self.first_free = threading.Event(), threading.Event()
            self.calls = 0

        def plan(self, params, folders: BatchFolders) -> BatchPlan:
            self.calls += 1
            if self.calls == 1:  # the first plan hangs until the test lets it go
                self.first_asked.set()
                assert self.first_free.wait(10)
                self.names = ["stale"]
            return super().plan(params, folders)

    core = SlowPlans()
    dialog = open_for(win, "Upscale", core)
    dialog.in_dir.setText(folders[0])
    dialog.out_dir.setText(folders[1])
    dialog.refresh_plan()
    assert core.first_asked.wait(5)
    assert dialog.planning and dialog.plan_label.text() == "Looking at the folders…"
    assert not dialog.start_button.isEnabled() and dialog.start() is False
    core.names = ["a", "b", "c"]
    replan(qtbot, dialog)  # the GUI thread was free to plan again meanwhile
    assert dialog.plan_label.text().startswith("3 files to do")
    core.first_free.set()
    qtbot.waitUntil(lambda: len(core.plans) == 2)
    qtbot.wait(100)  # the stale plan's delivery arrives, and is dropped
    assert dialog.plan_label.text().startswith("3 files to do")
    assert [i.key for i in dialog.plan.items] == ["a", "b", "c"]


def test_the_settings_line_names_what_matters() -> None:
    from studio.engine.jobs import StylizeParams, UpscaleParams

    assert describe_params(UpscaleParams(model="lanczos", scale=2)) == "model lanczos · scale 2"
    picture = np.zeros((4, 5, 3), np.uint8)
    line = describe_params(StylizeParams(style="image", style_image=picture, strength=0.25))
    assert "style image picture 5×4" in line and "strength 0.25" in line
