"""Turning panel requests into jobs: snapshot what each task needs from the document.

A mixin of :class:`~studio.ui.main_window.MainWindow` (it uses ``_doc_ready``, ``controller``
and ``show_error``), kept apart so the window module stays about layout and wiring.
"""

from __future__ import annotations

import numpy as np

from studio.document import Document
from studio.engine.messages import TileReady
from studio.engine.tasks.generate import no_pixels


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

    def run_generate(self, params) -> None:
        doc = self._doc_ready()
        if doc is None:  # nothing open: generate onto a fresh white canvas
            doc = Document.from_image(np.full((512, 512, 3), 255, np.uint8), "Untitled")
            self.set_document(doc)
        image = doc.composite()[:, :, :3] if params.mode == "variations" else no_pixels()
        self.generate_panel.clear_results()
        self.controller.submit(params, image)

    def _on_generate_message(self, msg) -> None:
        request = self.controller.active
        if isinstance(msg, TileReady) and request is not None and request.task == "generate":
            self.generate_panel.add_result(msg)

    def _on_generate_pick(self, index: int) -> None:
        staged = self.controller.staged
        if staged is not None and staged.request.task == "generate":
            staged.info["picked"] = index
