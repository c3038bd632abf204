"""File ▸ Batch…: the current task panel's settings run over a folder, in the background.

The dialog takes the parameters the panel would run now (its ``params()``), asks for the
folders (inpaint: a masks folder or one mask; generate: a prompt-list file instead of an input
folder), shows what Start would run (the dry-run numbers: files to do, already done, to redo,
an estimate), then runs it on a :class:`~studio.ui.batch_run.BatchThread` with a progress bar,
count, rate and time left, and lists each failed file with its reason.

Closing the dialog does not stop the batch: it keeps going in the background and File ▸ Batch…
shows it again (its settings stay those it started with). Quitting the editor asks whether to
stop it; a stopped batch resumes from its manifest on the next Start with the same folders.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.batch.contract import ItemOutcome
from studio.task_kind import TaskKind
from studio.ui.batch_run import (
    BatchBackend,
    BatchCount,
    BatchEnded,
    BatchFolders,
    BatchPlan,
    BatchThread,
    PlanDelivery,
    describe_params,
    plan_in_background,
    plan_text,
)

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

#: the tasks a folder can go through (outpaint and describe make no sense per folder here)
BATCH_TASKS = (TaskKind.UPSCALE, TaskKind.STYLIZE, TaskKind.INPAINT, TaskKind.GENERATE)
MASK_FOLDER, ONE_MASK = "folder", "file"


class PathField(QWidget):
    """A line edit with a Browse… button for a folder or a file."""

    changed = Signal()

    def __init__(self, caption: str, folder: bool, file_filter: str = "") -> None:
        super().__init__()
        self.caption, self.folder, self.file_filter = caption, folder, file_filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("a folder" if folder else "a file")
        self.edit.textChanged.connect(self.changed)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(text)

    def _browse(self) -> None:
        if self.folder:
            path = QFileDialog.getExistingDirectory(self, self.caption, self.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, self.text(), self.file_filter)
        if path:
            self.edit.setText(path)


class BatchDialog(QDialog):
    """The Batch dialog. ``backend`` plans and runs batches (the batch core; tests pass a fake).

    ``progressed(finished, total)`` is emitted after each outcome has been shown and
    ``ended(BatchEnded)`` after the end has been shown: tests wait on these, which the GUI
    emits, never on the batch thread's own signals."""

    progressed = Signal(int, int)
    ended = Signal(object)
    planned = Signal()  # the plan label shows the folders as they were at the last change

    def __init__(self, backend: BatchBackend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch")
        self.setMinimumWidth(560)
        self.backend = backend
        self.params: Any = None
        self.task_title = ""
        self.plan: BatchPlan | None = None
        self.thread: BatchThread | None = None
        self.count: BatchCount | None = None
        self._plans = PlanDelivery()  # plans are made off the GUI thread (inputs are hashed)
        self._plans.done.connect(self._on_planned)
        self._plan_generation = 0
        self.planning = False
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(300)  # typing a path plans once, not per key
        self._plan_timer.timeout.connect(self.refresh_plan)
        self._build()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.task_label = QLabel()
        self.task_label.setWordWrap(True)
        self.in_dir = PathField("Input folder", folder=True)
        self.out_dir = PathField("Output folder", folder=True)
        self.mask_kind = QComboBox()
        self.mask_kind.addItem("A mask per image (same name)", MASK_FOLDER)
        self.mask_kind.addItem("One mask for every image", ONE_MASK)
        self.masks = PathField("Masks folder", folder=True)
        self.masks.edit.setPlaceholderText("a folder of masks named like the images")
        self.prompts = PathField("Prompt list", folder=False, file_filter="Text (*.txt);;All (*)")
        self.prompts.edit.setPlaceholderText("a text file: one prompt a line, # for comments")
        form = QFormLayout()
        form.addRow("Settings", self.task_label)
        form.addRow("Input folder", self.in_dir)
        form.addRow("Masks", self.mask_kind)
        form.addRow("", self.masks)
        form.addRow("Prompt list", self.prompts)
        form.addRow("Output folder", self.out_dir)
        self.form = form
        self.plan_label = QLabel("Choose the folders.")
        self.plan_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFormat("%v/%m")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label = QLabel()
        self.failures = QListWidget()
        self.failures.setMaximumHeight(120)
        self.failures.setWordWrap(True)
        self.failures.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.failures_label = QLabel("Failed files")
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the file being processed")
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Hide this window; a running batch keeps going")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(self.plan_label)
        box.addWidget(self.progress)
        box.addWidget(self.progress_label)
        box.addWidget(self.failures_label)
        box.addWidget(self.failures)
        box.addLayout(buttons)
        for field in (self.in_dir, self.out_dir, self.masks, self.prompts):
            field.changed.connect(self._folders_changed)
        self.mask_kind.currentIndexChanged.connect(self._on_mask_kind)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self._show_failures()
        self._update_buttons()

    def _set_row_visible(self, widget: QWidget, visible: bool) -> None:
        self.form.setRowVisible(widget, visible)

    def _folders_changed(self) -> None:
        if not self.running:
            self.count = None  # another folder: the last run's numbers no longer apply
            self._plan_timer.start()

    def _on_mask_kind(self) -> None:
        one = self.mask_kind.currentData() == ONE_MASK
        self.masks.folder = not one
        self.masks.caption = "One mask" if one else "Masks folder"
        self.masks.edit.setPlaceholderText(
            "one mask image" if one else "a folder of masks named like the images"
        )
        self._folders_changed()

    # -- the task --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.thread is not None

    @property
    def task(self) -> TaskKind | None:
        return getattr(self.params, "task", None)

    def set_task(self, params: Any, title: str) -> bool:
        """Take a panel's current parameters; refused (False) while a batch runs."""
        if self.running:
            return False
        self.params, self.task_title = params, title
        self.count = None
        task = self.task
        self.task_label.setText(f"<b>{title}</b>: {describe_params(params)}")
        self._set_row_visible(self.in_dir, task != TaskKind.GENERATE)
        self._set_row_visible(self.mask_kind, task == TaskKind.INPAINT)
        self._set_row_visible(self.masks, task == TaskKind.INPAINT)
        self._set_row_visible(self.prompts, task == TaskKind.GENERATE)
        self.setWindowTitle(f"Batch — {title}")
        self.refresh_plan()
        return True

    def folders(self) -> BatchFolders:
        task = self.task
        one_mask = self.mask_kind.currentData() == ONE_MASK
        mask_path = (self.masks.text() or None) if task == TaskKind.INPAINT else None
        return BatchFolders(
            in_dir="" if task == TaskKind.GENERATE else self.in_dir.text(),
            out_dir=self.out_dir.text(),
            masks=None if one_mask else mask_path,
            mask=mask_path if one_mask else None,
            prompts=(self.prompts.text() or None) if task == TaskKind.GENERATE else None,
        )

    # -- plan (the dry run) ----------------------------------------------------------------------
    @Slot()
    def refresh_plan(self) -> None:
        """Plan with the folders as they are now, on a short-lived thread (planning hashes the
        inputs the manifest names, which takes a while for a large folder); ``planned`` is
        emitted once the plan label shows the result."""
        self._plan_timer.stop()
        if self.running:
            return
        self.plan = None
        self._plan_generation += 1  # a plan still being made for older folders is dropped
        problem = self._missing()
        if problem is not None:
            self._show_plan(None, problem)
            return
        self.planning = True
        self.plan_label.setText("Looking at the folders…")
        self._update_buttons()
        threading.Thread(
            target=plan_in_background,
            args=(self._plans, self._plan_generation, self.backend, self.params, self.folders()),
            name="batch-plan",
            daemon=True,
        ).start()

    @Slot(int, object, object)
    def _on_planned(self, generation: int, plan: BatchPlan | None, problem: str | None) -> None:
        if generation == self._plan_generation and not self.running:
            self._show_plan(plan, problem)

    def _show_plan(self, plan: BatchPlan | None, problem: str | None) -> None:
        self.planning = False
        self.plan = plan
        self.plan_label.setText(problem if problem else plan_text(plan))
        if self.count is None:  # after a run, the bar shows how it ended until folders change
            n = len(plan.items) if plan is not None else 0
            self.progress.setRange(0, max(n, 1))
            self.progress.setValue(0)
            self.progress.setFormat(f"0/{n}")
        self._update_buttons()
        self.planned.emit()

    def _missing(self) -> str | None:
        task = self.task
        if task is None:
            return "Open a task panel (Upscale, Inpaint, Stylize or Generate) first."
        if task not in BATCH_TASKS:
            return f"{self.task_title} does not run over a folder."
        f = self.folders()
        if task == TaskKind.GENERATE and not f.prompts:
            return "Choose a prompt list: a text file, one prompt a line."
        if task != TaskKind.GENERATE and not f.in_dir:
            return "Choose the input folder."
        if task == TaskKind.INPAINT and not (f.masks or f.mask):
            return "Choose the masks: a folder of masks named like the images, or one mask."
        if not f.out_dir:
            return "Choose the output folder."
        return None

    # -- running ---------------------------------------------------------------------------------
    @Slot()
    def start(self) -> bool:
        """Run the plan shown on a thread of its own; False when there is nothing to run."""
        plan = self.plan
        if self.running or self.planning or plan is None or not plan.items:
            return False
        self.failures.clear()
        self._show_failures()
        self.count = BatchCount(len(plan.items))
        self.progress.setRange(0, len(plan.items))
        self.progress.setFormat("%v/%m")
        self.progress.setValue(0)
        self.progress_label.setText(f"0/{len(plan.items)} · starting")
        self.thread = BatchThread(self.backend, plan)
        self.thread.outcome.connect(self._on_outcome)
        self.thread.ended.connect(self._on_ended)
        self._update_buttons()
        self.thread.start()
        return True

    @Slot()
    def cancel(self) -> None:
        """Stop between files (the one being processed finishes)."""
        if self.thread is not None and not self.thread.cancelling:
            self.thread.cancel()
            self.progress_label.setText(self.progress_label.text() + " · stopping after this file")
            self._update_buttons()

    @Slot(object)
    def _on_outcome(self, outcome: ItemOutcome) -> None:
        count = self.count
        if count is None:
            return
        count.add(outcome)
        if not outcome.ok:
            reason = outcome.reason or "failed"
            item = QListWidgetItem(f"{outcome.key} — {self._short(outcome.key, reason)}")
            item.setToolTip(reason)
            self.failures.addItem(item)
            self._show_failures()
        self.progress.setValue(count.finished)
        self.progress_label.setText(count.text())
        self.progressed.emit(count.finished, count.total)

    @Slot(object)
    def _on_ended(self, end: BatchEnded) -> None:
        thread, self.thread = self.thread, None
        if thread is not None:
            thread.wait()
            thread.deleteLater()
        count = self.count
        summary = count.text() if count is not None else ""
        if end.error:
            summary = f"Stopped: {end.error}"
        elif end.cancelled:
            summary = f"Cancelled at {summary}; Start resumes"
        else:
            summary = f"Done: {end.ok} written" + (f", {end.failed} failed" if end.failed else "")
        self.progress_label.setText(summary)
        self.ended.emit(end)
        self.refresh_plan()  # what is left now (failed files are tried again)

    def _short(self, key: str, reason: str) -> str:
        """The reason without the input's path in front (the key already names the file)."""
        plan = self.plan
        sources = {i.key: i.source for i in plan.items} if plan is not None else {}
        source = sources.get(key)
        if source and reason.startswith(source + ": "):
            return reason[len(source) + 2 :]
        return reason

    def _show_failures(self) -> None:
        has = self.failures.count() > 0
        self.failures.setVisible(has)
        self.failures_label.setVisible(has)

    def _update_buttons(self) -> None:
        running = self.running
        plan = self.plan
        ready = not running and not self.planning and plan is not None and bool(plan.items)
        self.start_button.setEnabled(ready)
        self.cancel_button.setEnabled(running and not self.thread.cancelling)
        for field in (self.in_dir, self.out_dir, self.masks, self.prompts, self.mask_kind):
            field.setEnabled(not running)

    # -- closing ---------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Closing hides the dialog; a running batch goes on (File ▸ Batch… shows it again)."""
        if self.running and self.parent() is not None:
            status = getattr(self.parent(), "statusBar", None)
            if status is not None:
                status().showMessage("The batch goes on in the background (File ▸ Batch…)", 8000)
        super().closeEvent(event)

    def ask_stop(self) -> bool:
        """Ask whether quitting may stop the running batch. Tests replace this method."""
        count = self.count
        done = f"{count.finished} of {count.total} files are done. " if count else ""
        answer = QMessageBox.question(
            self,
            "A batch is running",
            f"Quit and stop the batch? {done}Starting it again with the same folders "
            "resumes where it stopped.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def confirm_quit(self) -> bool:
        """True when the editor may quit: no batch runs, or the artist agreed to stop it."""
        return not self.running or self.ask_stop()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop a running batch between files and wait for its thread; True when it ended."""
        thread = self.thread
        if thread is None:
            return True
        thread.cancel()
        return thread.wait(timeout_ms)


def default_backend(window: MainWindow) -> BatchBackend:
    """The batch core (worker processes beside the editor), with the editor's engine settings."""
    from studio.ui.batch_core import CoreBackend

    return CoreBackend(window.controller.engine.config)


def show_batch_dialog(window: MainWindow, backend: BatchBackend | None = None) -> BatchDialog:
    """File ▸ Batch…: the dialog for the current task panel (the running batch, if any)."""
    dialog: BatchDialog | None = getattr(window, "batch_dialog", None)
    if dialog is None:
        dialog = BatchDialog(backend or default_backend(window), window)
        window.batch_dialog = dialog
    tabs = window.task_tabs
    panel = tabs.currentWidget() if tabs is not None else None
    if not dialog.running and panel is not None and hasattr(panel, "params"):
        dialog.set_task(panel.params(), tabs.tabText(tabs.currentIndex()))
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def stop_batch_before_quit(window: MainWindow) -> bool:
    """For the window's close: False when the artist keeps the batch (and the editor) running;
    otherwise the batch is stopped between files and its thread waited for."""
    dialog: BatchDialog | None = getattr(window, "batch_dialog", None)
    if dialog is None:
        return True
    if not dialog.confirm_quit():
        return False
    dialog.shutdown()
    return True
