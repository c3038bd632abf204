"""The Generate panel's text side: a prompt field that runs on Ctrl+Enter, and Describe, whose
captions of the canvas (or the selection) become the prompt with one click.

Describe runs on the engine beside the controller's jobs rather than through the controller: it
changes no pixels, so it must not drop a staged result or show a result bar. Its messages come
back on the engine's signal to :meth:`DescribeClient.on_message`, a slot of this GUI-thread
object, and messages of any other job are ignored.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QPlainTextEdit

from studio.engine.jobs import JobRequest
from studio.engine.messages import JobCancelled, JobFailed, JobFinished
from studio.geometry import Rect

RUN_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class PromptEdit(QPlainTextEdit):
    """A few lines of text; Ctrl+Enter emits ``submitted`` (plain Enter starts a new line)."""

    submitted = Signal()

    def __init__(self, placeholder: str, lines: int, parent=None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)  # Tab leaves the field, as in the rest of the panel
        height = self.fontMetrics().lineSpacing() * lines + 12
        self.setFixedHeight(height)

    def text(self) -> str:
        return self.toPlainText().strip()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in RUN_KEYS and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class CaptionList(QListWidget):
    """Describe's captions, best first, with their score; a click emits ``picked(caption)``."""

    picked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setToolTip("Click a caption to use it as the prompt")
        self.setMaximumHeight(110)
        self.itemClicked.connect(self._clicked)

    def show_captions(self, captions: list[tuple[str, float]]) -> None:
        self.clear()
        for caption, score in captions:
            item = QListWidgetItem(f"{caption}  ({score:.2f})")
            item.setData(Qt.ItemDataRole.UserRole, caption)
            self.addItem(item)

    def captions(self) -> list[str]:
        return [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]

    def _clicked(self, item: QListWidgetItem) -> None:
        self.picked.emit(item.data(Qt.ItemDataRole.UserRole))


class DescribeClient(QObject):
    """Submits describe jobs to an engine and emits ``captions(list)`` or ``failed(str)``;
    ``model`` is the describe model (None: the task's default)."""

    captions = Signal(list)
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._engine = None
        self._job: int | None = None
        self.model: str | None = None

    def attach_engine(self, engine) -> None:
        self._engine = engine
        engine.message.connect(self.on_message)

    @property
    def busy(self) -> bool:
        return self._job is not None

    def describe(self, image: np.ndarray, roi: Rect | None = None, top_k: int = 5) -> int | None:
        """Describe ``image`` (its ``roi``); a describe still running is cancelled first."""
        from studio.engine.tasks.describe import DescribeParams

        if self._engine is None:
            return None
        if self._job is not None:
            self._engine.cancel(self._job)
        params = DescribeParams(top_k=top_k, **({"model": self.model} if self.model else {}))
        request = JobRequest(params, image, roi=roi)
        self._job = request.job_id
        self.busy_changed.emit(True)
        return self._engine.submit(request)

    @Slot(object)
    def on_message(self, msg) -> None:
        if self._job is None or msg.job_id != self._job:
            return
        if isinstance(msg, JobFinished):
            self._done()
            self.captions.emit(list(msg.info.get("captions", [])))
        elif isinstance(msg, JobFailed):
            self._done()
            self.failed.emit(msg.message)
        elif isinstance(msg, JobCancelled):
            self._done()

    def _done(self) -> None:
        self._job = None
        self.busy_changed.emit(False)
