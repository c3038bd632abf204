"""Progressive redraw: big rectangles are redrawn band by band from the event loop.

Re-compositing a whole 8192x8192 document takes ~0.7 s of numpy on this CPU. Done in one go on
the GUI thread, that freezes the window (hiding a full-size layer, inverting an 8k mask,
applying an upscale). :class:`BandQueue` splits such a rectangle into bands of ~2 M pixels and
works through them in slices of ~25 ms from a zero-interval timer, so input and paint events run
between slices; bands inside the viewport go first. Each band reads the document when it runs,
so a band queued before a later edit still draws the latest pixels, and a newer request for a
rectangle drops queued bands it covers. Small rectangles (brush dabs) never wait: the canvas
draws them at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from studio.geometry import Rect

BAND_PIXELS = 1 << 21
#: rectangles up to this many pixels are drawn at once (~10 ms); larger ones band by band
SYNC_PIXELS = 1 << 22
#: event-loop time spent on bands before input and paint events get their turn
SLICE_SECONDS = 0.025


def bands(rect: Rect) -> list[Rect]:
    """``rect`` split into bands of rows of at most ``BAND_PIXELS`` pixels."""
    if rect.area <= BAND_PIXELS:
        return [rect]
    rows = max(1, BAND_PIXELS // max(rect.w, 1))
    ys = range(rect.y, rect.bottom, rows)
    return [Rect(rect.x, y, rect.w, min(rows, rect.bottom - y)) for y in ys]


class BandQueue(QObject):
    """Runs ``work[kind](band)`` for queued bands, visible ones first, a slice at a time."""

    def __init__(self, visible: Callable[[], Rect], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._visible = visible
        self._work: dict[str, Callable[[Rect], None]] = {}
        self._pending: list[tuple[str, Rect]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run_slice)

    def register(self, kind: str, work: Callable[[Rect], None]) -> None:
        self._work[kind] = work

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, kind: str, rect: Rect) -> None:
        """Draw ``rect`` now when it is small, else queue its bands."""
        if rect.is_empty():
            return
        if rect.area <= SYNC_PIXELS:
            for band in bands(rect):
                self._work[kind](band)
            return
        kept = [(k, b) for k, b in self._pending if not (k == kind and rect.contains(b))]
        visible = self._visible()
        # visible bands first; otherwise first come, first served (the sort is stable)
        self._pending = [*kept, *((kind, b) for b in bands(rect))]
        self._pending.sort(key=lambda kb: kb[1].intersect(visible).is_empty())
        if not self._timer.isActive():
            self._timer.start()

    def _run_slice(self) -> None:
        deadline = time.perf_counter() + SLICE_SECONDS
        while self._pending:  # at least one band per slice
            kind, band = self._pending.pop(0)
            self._work[kind](band)
            if time.perf_counter() >= deadline:
                break
        if not self._pending:
            self._timer.stop()

    def flush(self) -> None:
        """Draw everything queued now (before a screenshot, an export of the view, a test)."""
        while self._pending:
            kind, band = self._pending.pop(0)
            self._work[kind](band)
        self._timer.stop()

    def clear(self) -> None:
        """Forget queued bands (the images they were for were replaced)."""
        self._pending.clear()
        self._timer.stop()
