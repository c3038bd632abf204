"""Undo history: named steps made of commands, with a byte budget.

One brush stroke, one mask edit, one layer edit or one applied engine result is one :class:`Step`.
Pixel commands store only the tiles they touched (old and new pixels), so memory grows with the
touched area, never with the image size. When the total exceeds the budget the oldest steps go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from studio.document.document import Document

DEFAULT_BUDGET_BYTES = 1 << 30


class Command(Protocol):
    """One reversible change. ``redo`` is only called after ``undo``."""

    def undo(self, doc: Document) -> None: ...

    def redo(self, doc: Document) -> None: ...

    @property
    def nbytes(self) -> int: ...


@dataclass
class Step:
    """A named group of commands undone and redone together."""

    name: str
    commands: list[Command] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.commands)

    def undo(self, doc: Document) -> None:
        for command in reversed(self.commands):
            command.undo(doc)

    def redo(self, doc: Document) -> None:
        for command in self.commands:
            command.redo(doc)


class History:
    """Linear undo/redo stacks with a memory cap on the total bytes held."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if budget_bytes <= 0:
            raise ValueError("history budget must be positive")
        self.budget_bytes = budget_bytes
        self._done: list[Step] = []
        self._undone: list[Step] = []
        self.dropped = 0  # steps discarded by the budget since creation
        self.on_change: Callable[[], None] | None = None

    # -- queries -----------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._done) + sum(s.nbytes for s in self._undone)

    @property
    def steps(self) -> Sequence[Step]:
        """All steps, oldest first: the done ones then the undone ones (newest undone last)."""
        return [*self._done, *reversed(self._undone)]

    @property
    def position(self) -> int:
        """Number of steps currently applied (index into :attr:`steps`)."""
        return len(self._done)

    def can_undo(self) -> bool:
        return bool(self._done)

    def can_redo(self) -> bool:
        return bool(self._undone)

    def current_step(self) -> Step | None:
        """The most recently applied step (None at the start of the history)."""
        return self._done[-1] if self._done else None

    def undo_name(self) -> str | None:
        return self._done[-1].name if self._done else None

    def redo_name(self) -> str | None:
        return self._undone[-1].name if self._undone else None

    # -- changes -----------------------------------------------------------------------------
    def push(self, step: Step) -> None:
        """Record an applied step; clears the redo stack and enforces the budget."""
        if not step.commands:
            return
        self._done.append(step)
        self._undone.clear()
        self._enforce_budget()
        self._changed()

    def undo(self, doc: Document) -> Step | None:
        if not self._done:
            return None
        step = self._done.pop()
        step.undo(doc)
        self._undone.append(step)
        self._changed()
        return step

    def redo(self, doc: Document) -> Step | None:
        if not self._undone:
            return None
        step = self._undone.pop()
        step.redo(doc)
        self._done.append(step)
        self._changed()
        return step

    def jump_to(self, doc: Document, position: int) -> None:
        """Undo or redo until ``position`` steps are applied."""
        position = max(0, min(position, len(self._done) + len(self._undone)))
        while len(self._done) > position:
            self.undo(doc)
        while len(self._done) < position:
            self.redo(doc)

    def set_budget(self, budget_bytes: int) -> None:
        if budget_bytes <= 0:
            raise ValueError("history budget must be positive")
        self.budget_bytes = budget_bytes
        self._enforce_budget()
        self._changed()

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self._changed()

    def _enforce_budget(self) -> None:
        # Redo steps go first (they are the least likely to be wanted), then the oldest undo
        # steps; the newest applied step is always kept so the last action can be undone.
        total = self.nbytes
        while total > self.budget_bytes and self._undone:
            total -= self._undone.pop(0).nbytes
            self.dropped += 1
        while total > self.budget_bytes and len(self._done) > 1:
            total -= self._done.pop(0).nbytes
            self.dropped += 1

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
