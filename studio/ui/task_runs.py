"""Turning panel requests into jobs: snapshot what each task needs from the document.

A mixin of :class:`~studio.ui.main_window.MainWindow` (it uses ``_doc_ready``, ``controller``
and ``show_error``), kept apart so the window module stays about layout and wiring.
"""

from __future__ import annotations


class TaskRunsMixin:
    def run_upscale(self, params) -> None:
        if doc := self._doc_ready():
            self.controller.submit(params, doc.composite())

    def run_inpaint(self, params) -> None:
        doc = self._doc_ready()
        if doc is None:
            return
        if not (doc.mask >= 0.5).any():
            self.show_error(
                "Nothing to fill",
                "Paint a mask over what should be filled first "
                "(M picks the mask brush; the selection tools work too).",
            )
            return
        self.controller.submit(params, doc.composite(), mask=doc.mask.copy())

    def run_outpaint(self, panel) -> None:
        if doc := self._doc_ready():
            params = panel.outpaint_params((doc.width, doc.height))
            if not any((params.left, params.right, params.top, params.bottom)):
                self.show_error(
                    "Nothing to extend",
                    "Tick a side, or pick an aspect ratio the image does not have yet.",
                )
                return
            self.controller.submit(params, doc.composite())

    def run_stylize(self, params, only_in_mask: bool) -> None:
        doc = self._doc_ready()
        if doc is None:
            return
        mask = None
        if only_in_mask:
            if not (doc.mask >= 0.5).any():
                self.show_error(
                    "No mask",
                    "Paint a mask where the style should go, or untick “Only inside the mask”.",
                )
                return
            mask = doc.mask.copy()
        self.controller.submit(params, doc.composite(), mask=mask)
