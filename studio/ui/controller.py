"""The controller: turns actions into job requests and engine messages into previews and undo steps.

It is the only piece that knows both the document and the engine. Messages arrive in
:meth:`JobController.on_message`, a slot of this GUI-thread object; messages for any job other
than the active one are dropped. After a message has been applied, :attr:`applied` is emitted
(tests wait on it, never on the engine's own signal).

The artist keeps painting while a job runs. On Accept a result lands as a new layer or merged
into the active layer (:attr:`JobController.as_new_layer`, remembered by the main window); if
the artist painted that layer after the job's inputs were taken (``doc.changed_since`` with the
request's ``doc_revision``) merging would paint over the new strokes, so the result lands as a
new layer instead and the status line says so. Regenerate submits the same request again with a
fresh job id (and a fresh seed when the task has one).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QRectF, Signal, Slot
from PySide6.QtGui import QImage

from studio.document import Document
from studio.document.landing import Landing
from studio.engine.jobs import JobRequest, TaskParams, next_job_id
from studio.engine.messages import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
    Message,
    ModelLoading,
    TileReady,
)
from studio.engine.task_table import TaskDef, get
from studio.engine.thread import EngineThread
from studio.export_metadata import record_provenance
from studio.pixels import to_8bit
from studio.ui.canvas import CanvasView
from studio.ui.qimage import blank_canvas_image, write_region


@dataclass
class StagedResult:
    """A finished result waiting for Accept or Discard.

    ``as_new_layer`` is decided at Accept time (see the module docstring); landing reads it.
    """

    request: JobRequest
    image: np.ndarray
    info: dict
    as_new_layer: bool = True

    @property
    def task(self) -> TaskDef:
        return get(self.request.task)

    def landing(self) -> Landing:
        """The result as the task's landing function takes it."""
        request = self.request
        title = self.task.title
        return Landing(self.image, request.image, title, request.roi, self.info, self.as_new_layer)


class JobController(QObject):
    applied = Signal(object)  # a Message, after the GUI has applied it
    progress = Signal(float, str)  # fraction, text
    busy_changed = Signal(bool)
    staged_changed = Signal(bool)
    failed = Signal(str)
    status = Signal(str)

    def __init__(
        self, engine: EngineThread, canvas: CanvasView, document: Callable[[], Document | None]
    ) -> None:
        super().__init__()
        self.engine = engine
        self.canvas = canvas
        self._document = document
        self.active: JobRequest | None = None
        self.staged: StagedResult | None = None
        self.last_request: JobRequest | None = None
        self.as_new_layer = True  # where results land on Accept (the artist's choice)
        self._preview: QImage | None = None
        self._final_area = 0  # pixels of the preview drawn from final tiles
        self.dropped = 0  # messages ignored because their job is no longer active
        engine.message.connect(self.on_message)

    # -- actions ---------------------------------------------------------------------------------
    def submit(self, params: TaskParams, image: np.ndarray, **kwargs) -> int:
        """Start a job on ``image``; a running job or staged result of ours is dropped first."""
        doc = self._document()
        if self.active is not None:
            self.engine.cancel(self.active.job_id)
        self.discard()
        request = JobRequest(params, image, doc_revision=doc.revision if doc else 0, **kwargs)
        return self._start(request)

    def _start(self, request: JobRequest) -> int:
        self.active = request
        self.last_request = request
        self.busy_changed.emit(True)
        self.progress.emit(0.0, "queued")
        return self.engine.submit(request)

    def regenerate(self) -> int | None:
        """Run the staged (or last) request again: same inputs and parameters, a new job id and,
        for tasks with a ``seed``, a new seed (the same seed would give the same image)."""
        request = self.staged.request if self.staged is not None else self.last_request
        if request is None:
            return None
        if self.active is not None:
            self.engine.cancel(self.active.job_id)
        self.discard()
        params = request.params
        if dataclasses.is_dataclass(params) and "seed" in {
            f.name for f in dataclasses.fields(params)
        }:
            params = dataclasses.replace(params, seed=random.randrange(2**31))
        return self._start(dataclasses.replace(request, params=params, job_id=next_job_id()))

    def cancel(self) -> None:
        if self.active is not None:
            self.engine.cancel(self.active.job_id)
            self.status.emit("cancelling…")

    def accept(self, as_new_layer: bool | None = None) -> bool:
        """Apply the staged result to the document as one undo step."""
        staged, doc = self.staged, self._document()
        if staged is None or doc is None:
            return False
        wanted = self.as_new_layer if as_new_layer is None else as_new_layer
        staged.as_new_layer = wanted
        note = ""
        task = staged.task
        if not wanted and not (task.replaces_document or task.natural_size):
            if doc.changed_since(doc.active_layer.id, staged.request.doc_revision):
                staged.as_new_layer = True
                note = " as a new layer: you painted on the layer while it ran"
        elif task.replaces_document and doc.revision > staged.request.doc_revision:
            note = "; edits made while it ran are not in it (Undo brings them back)"
        old_size = (doc.width, doc.height)
        view = self.canvas.view_state()
        before = {layer.id for layer in doc.layers}
        task.land(doc, staged.landing())
        record_provenance(doc.layers, before, doc.active_layer, staged.request.params)
        if task.replaces_document and (doc.width, doc.height) != old_size:
            self.canvas.restore_view(view, *_view_mapping(staged, old_size, doc))
        self._clear_preview()
        self.staged = None
        self.staged_changed.emit(False)
        self.status.emit("applied" + note)
        return True

    def abandon(self) -> None:
        """Forget the running job and any staged result (another document opens): the job is
        cancelled and the messages it still sends are dropped as stale."""
        if self.active is not None:
            self.engine.cancel(self.active.job_id)
            self._end_job("cancelled")
        self.discard()

    def discard(self) -> None:
        if self.staged is not None:
            self.staged = None
            self.staged_changed.emit(False)
        self._clear_preview()

    # -- messages --------------------------------------------------------------------------------
    @Slot(object)
    def on_message(self, msg: Message) -> None:
        if self.active is None or msg.job_id != self.active.job_id:
            self.dropped += 1
            return
        if isinstance(msg, JobStarted):
            self.progress.emit(0.0, f"{msg.task}: starting")
        elif isinstance(msg, ModelLoading):
            self.progress.emit(0.0, f"loading {msg.model_id}")
        elif isinstance(msg, JobProgress):
            eta = f" — {msg.eta_s:.0f} s left" if msg.eta_s is not None else ""
            self.progress.emit(msg.fraction, f"{msg.stage} {msg.done}/{msg.total}{eta}")
        elif isinstance(msg, TileReady):
            self._draw_tile(msg)
        elif isinstance(msg, JobFinished):
            self._finish(msg)
        elif isinstance(msg, JobCancelled):
            self._end_job("cancelled")
            self._clear_preview()
        elif isinstance(msg, JobFailed):
            self._end_job("failed")
            self._clear_preview()
            self.failed.emit(msg.message)
        self.applied.emit(msg)

    def _display_rect(self, out_size: tuple[int, int] | None = None) -> QRectF:
        doc = self._document()
        roi = self.active.roi if self.active else None
        if roi is not None:
            return QRectF(roi.x, roi.y, roi.w, roi.h)
        params = self.active.params if self.active else None
        task = get(self.active.task) if self.active else None
        if doc and out_size and task and task.natural_size:
            w, h = out_size  # shown at its own size, centred on the canvas
            return QRectF((doc.width - w) // 2, (doc.height - h) // 2, w, h)
        if doc and task and task.grows_canvas:  # the canvas grows around it
            return QRectF(
                -params.left,
                -params.top,
                doc.width + params.left + params.right,
                doc.height + params.top + params.bottom,
            )
        return QRectF(0, 0, doc.width, doc.height) if doc else QRectF()

    def _draw_tile(self, msg: TileReady) -> None:
        w, h = msg.out_size
        if self._preview is None or (self._preview.width(), self._preview.height()) != (w, h):
            self._preview = blank_canvas_image(w, h)
            self._final_area = 0
            self.canvas.show_preview(self._preview, self._display_rect((w, h)), blank=True)
        write_region(self._preview, msg.rect.x, msg.rect.y, msg.pixels[:, :, :4])
        if msg.final:  # final tiles partition the output: their areas add up to it
            self._final_area += msg.rect.area
        self.canvas.update_preview(QRectF(msg.rect.x, msg.rect.y, msg.rect.w, msg.rect.h))

    def _finish(self, msg: JobFinished) -> None:
        image = msg.image
        image = to_8bit(image)  # the canvas is 8-bit
        h, w = image.shape[:2]
        shown = (
            self._preview is not None
            and (self._preview.width(), self._preview.height()) == (w, h)
            and self._final_area >= w * h
        )
        if not shown:  # redrawing a result the final tiles already showed would stall the UI
            self._preview = blank_canvas_image(w, h)
            write_region(self._preview, 0, 0, image)
            self.canvas.show_preview(self._preview, self._display_rect((w, h)))
        self.staged = StagedResult(self.active, image, dict(msg.info))
        self._end_job(
            f"done in {msg.timings.get('total_s', 0):.1f} s — Enter to accept, Esc to discard"
        )
        self.staged_changed.emit(True)

    def _end_job(self, text: str) -> None:
        self.active = None
        self.busy_changed.emit(False)
        self.progress.emit(1.0, text)
        self.status.emit(text)

    def _clear_preview(self) -> None:
        self._preview = None
        self.canvas.hide_preview()


def _view_mapping(
    staged: StagedResult, old_size: tuple[int, int], doc: Document
) -> tuple[float, float, float, float]:
    """(scale x, scale y, offset x, offset y) taking a point of the document before ``staged``
    replaced it to the same point of the picture after: an upscale scales, an outpaint adds
    margins on the left and top."""
    if staged.task.grows_canvas:
        left, top = staged.info.get("offset", (0, 0))
        return 1.0, 1.0, float(left), float(top)
    return doc.width / old_size[0], doc.height / old_size[1], 0.0, 0.0
