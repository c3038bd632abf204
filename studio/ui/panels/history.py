"""The History panel: every step by name, the current one highlighted; click to jump there.

Row 0 is the document as opened; row n is the state after n steps. Steps that are undone (and
can be redone) are shown greyed. The panel only mirrors ``Document.history``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from studio.document import Change, Document


class HistoryPanel(QWidget):
    """Emits ``jump_requested(position)`` when the artist clicks a row."""

    jump_requested = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.list = QListWidget()
        #: (name, undone) shown in each row, so a change touches only the rows that differ
        self._rows: list[tuple[str, bool] | None] = []
        self._grey = QBrush(QColor(140, 140, 140))
        self._normal = self.list.palette().text()
        self.memory = QLabel()
        self.memory.setStyleSheet("color: palette(mid);")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.memory)
        self.list.itemClicked.connect(lambda item: self.jump_requested.emit(self.list.row(item)))
        self.setEnabled(False)

    def set_document(self, doc: Document | None) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        self.document = doc
        if doc is not None:
            self._unsubscribe = doc.subscribe(self._on_change)
        self.setEnabled(doc is not None)
        self.rebuild()

    def _on_change(self, change: Change) -> None:
        if change.kind in ("history", "size"):
            self.rebuild()

    def rebuild(self) -> None:
        """Bring the rows in line with the history, touching only rows that changed.

        A full clear-and-refill per brush stroke made a long session quadratic (and each
        refill churned Qt item wrappers); now a stroke adds one row and restyles at most two.
        """
        blocker = QSignalBlocker(self.list)
        doc = self.document
        if doc is None:
            self.list.clear()
            self._rows = []
            self.memory.clear()
            return
        history = doc.history
        first = "Open " + (Path(doc.info.path).name if doc.info.path else "image")
        if history.dropped:
            first = f"… {history.dropped} older step(s) dropped"
        names = [first, *(s.name for s in history.steps)]
        wanted = [(name, row > history.position) for row, name in enumerate(names)]
        while self.list.count() > len(wanted):
            self.list.takeItem(self.list.count() - 1)
            self._rows.pop()
        for row, (name, undone) in enumerate(wanted):
            if row < len(self._rows) and self._rows[row] == (name, undone):
                continue
            if row < self.list.count():
                item = self.list.item(row)
                item.setText(name)
            else:
                item = QListWidgetItem(name)
                self.list.addItem(item)
                self._rows.append(None)
            item.setForeground(self._grey if undone else self._normal)
            font = QFont(item.font())
            font.setItalic(undone)
            item.setFont(font)
            self._rows[row] = (name, undone)
        self.list.setCurrentRow(history.position)
        self.list.scrollToItem(self.list.item(history.position))
        self.memory.setText(
            f"Undo memory {history.nbytes / 2**20:.1f} MiB of {history.budget_bytes / 2**20:.0f}"
        )
        del blocker
