"""Space+drag panning whatever widget has the keyboard focus.

Key events go to the focus widget, so a canvas that only watched its own keys panned only while
it had the focus: after a click on a panel button, Space pressed that button and the drag
painted a stroke. An application-wide event filter sees every key first. Measured cost: about
3 us per event of the application (PySide's call into Python), only Space keys do any work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QKeySequenceEdit,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)
from shiboken6 import isValid

if TYPE_CHECKING:
    from studio.ui.canvas import CanvasView


def types_text(widget: QWidget | None) -> bool:
    """Whether ``widget`` takes typed text, so a Space pressed in it is a space."""
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    if isinstance(widget, (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)):
        return not widget.isReadOnly()
    return isinstance(widget, QKeySequenceEdit)


class SpacePanFilter(QObject):
    """Space held while the pointer is over the canvas (or the canvas has the focus) arms
    panning, whatever widget has the keyboard focus: after a click on a panel button the Space
    would otherwise press that button and the drag would paint. A text field with the focus
    keeps its spaces. Installed on the application, because key events go to the focus widget.
    """

    def __init__(self, canvas: CanvasView) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        QApplication.instance().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        t = event.type()
        if t in _KEY_EVENTS:
            if event.key() != Qt.Key.Key_Space or not isValid(self.canvas):
                return False
            return self._space(t == QEvent.Type.KeyPress, event.isAutoRepeat())
        if t in _DEACTIVATE_EVENTS and isValid(self.canvas) and self.canvas.space_held:
            self._deactivated(watched, t)
        return False

    def _deactivated(self, watched: QObject, t: QEvent.Type) -> None:
        """Space held as our window or the application loses the focus: the release goes
        elsewhere, so the canvas stops waiting for it."""
        if t == QEvent.Type.ApplicationDeactivate or watched is self.canvas.window():
            self.canvas.set_space_held(False)

    def _space(self, pressed: bool, repeat: bool) -> bool:
        canvas = self.canvas
        if canvas.space_held:  # ours: swallow the auto-repeats and the release
            if not pressed and not repeat:
                canvas.set_space_held(False)
            return True
        if not pressed or repeat or QApplication.activeWindow() is not canvas.window():
            return False
        focus = QApplication.focusWidget()
        if types_text(focus):
            return False
        if focus is canvas or canvas.viewport().underMouse() or self._pointer_on_viewport():
            canvas.set_space_held(True)
            return True
        return False

    def _pointer_on_viewport(self) -> bool:
        """Asks the window system where the pointer is: Space pressed just after a move may
        arrive before the move's enter event has marked the viewport as under the mouse."""
        viewport = self.canvas.viewport()
        under = QApplication.widgetAt(QCursor.pos())
        return under is not None and (under is viewport or viewport.isAncestorOf(under))


_KEY_EVENTS = frozenset((QEvent.Type.KeyPress, QEvent.Type.KeyRelease))
_DEACTIVATE_EVENTS = frozenset((QEvent.Type.ApplicationDeactivate, QEvent.Type.WindowDeactivate))
