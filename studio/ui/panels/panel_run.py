"""The one way a task panel asks the window to run: ``run_requested = Signal(object)`` carrying
a :class:`PanelRun`, handled by one slot (:meth:`TaskRunsMixin.run_panel`).

The value says what the job needs from the document, so the window's slot knows no task by
name: the panel picks the parameters, the window snapshots the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class NothingToRun(Exception):
    """Raised by a panel's params function when the settings leave nothing to do."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__(text)
        self.title = title
        self.text = text


@dataclass(frozen=True)
class PanelRun:
    """What a panel asks the window to run.

    ``params``: the task's parameters, or a function of the document size (width, height)
    that returns them (outpaint's margins for an aspect ratio) and may raise
    :class:`NothingToRun`. ``mask``: the job gets the document's mask; when the mask is empty
    the window shows this (title, text) instead of running. ``image``: the job gets the
    composite (False: the task reads no pixels); ``rgb_only``: its colour channels only.
    ``new_canvas``: with no document open, start on a blank white one instead of doing nothing.
    ``region``: the job works on the selection (the box around the mask; selections edit the
    mask), or the whole picture when nothing is selected: the request's ``roi``.
    """

    params: Any | Callable[[tuple[int, int]], Any]
    mask: tuple[str, str] | None = None
    image: bool = True
    rgb_only: bool = False
    new_canvas: bool = False
    region: bool = False
