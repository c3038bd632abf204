"""Turning panel requests into jobs: snapshot what a task needs from the document.

A mixin of :class:`~studio.ui.main_window.MainWindow` (it uses ``_doc_ready``, ``controller``
and ``show_error``), kept apart so the window module stays about layout and wiring.
"""

from __future__ import annotations

import numpy as np

from studio.document import Document
from studio.engine.messages import TileReady
from studio.engine.task_table import get
from studio.engine.tasks.generate import no_pixels
from studio.geometry import Rect
from studio.ui.panels.panel_run import NothingToRun, PanelRun


class TaskRunsMixin:
    def run_panel(self, run: PanelRun) -> None:
        """The one slot of every task panel's ``run_requested``: snapshot what ``run`` says the
        job needs from the document, or say why nothing runs."""
        doc = self._doc_ready()
        if doc is None:
            if not run.new_canvas:
                return
            doc = Document.from_image(np.full((512, 512, 3), 255, np.uint8), "Untitled")
            self.set_document(doc)
        params = run.params
        if callable(params):
            try:
                params = params((doc.width, doc.height))
            except NothingToRun as refusal:
                self.show_error(refusal.title, refusal.text)
                return
        mask = None
        if run.mask is not None:
            if not (doc.mask >= 0.5).any():
                self.show_error(*run.mask)
                return
            mask = doc.mask.copy()
        image = no_pixels()
        if run.image:
            image = doc.composite()[:, :, :3] if run.rgb_only else doc.composite()
        roi = selection_box(doc) if run.region else None
        self.controller.submit(params, image, mask=mask, roi=roi)

    def describe_picture(self) -> None:
        """Describe the canvas, or the selection's box: the generate panel lists the captions."""
        doc = self._doc_ready()
        if doc is not None:
            self.generate_panel.describer.describe(doc.composite()[:, :, :3], selection_box(doc))

    def _on_generate_message(self, msg) -> None:
        """A new picture's tiles are the cells of its grid: the generate panel shows them."""
        request = self.controller.active
        if (
            isinstance(msg, TileReady)
            and msg.final
            and request is not None
            and get(request.task).natural_size
        ):
            self.generate_panel.add_result(msg)

    def _on_generate_pick(self, index: int) -> None:
        staged = self.controller.staged
        if staged is not None and staged.task.natural_size:
            staged.info["picked"] = index


def selection_box(doc: Document) -> Rect | None:
    """The box around the mask (selections edit the mask), or None when nothing is masked."""
    inside = doc.mask >= 0.5
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if rows.size == 0:
        return None
    return Rect.from_edges(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
