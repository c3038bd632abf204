"""The engine's one long-lived QThread: a job queue in, one ``Signal(object)`` of messages out.

This is the only Qt module of the engine. Everything it runs is :class:`JobRunner`, which is
plain Python. Connect :attr:`EngineThread.message` to a slot of a QObject living on the GUI
thread so messages are delivered there (a lambda would run in this worker thread).
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable

import torch
from PySide6.QtCore import QThread, Signal

from studio.engine.config import EngineConfig
from studio.engine.device import configure_cpu_threads
from studio.engine.jobs import CancelToken, JobRequest
from studio.engine.messages import JobCancelled, JobFailed
from studio.engine.report import EngineReady, engine_report
from studio.engine.runner import JobRunner

_STOP = object()

#: every engine thread ever started, so tests can fail when one is left running
LIVE_THREADS: weakref.WeakSet[EngineThread] = weakref.WeakSet()


class EngineThread(QThread):
    """Runs queued jobs one at a time for the life of the application."""

    message = Signal(object)
    #: one :class:`~studio.engine.report.EngineReady` once the runner (and device) is set up
    ready = Signal(object)

    def __init__(
        self,
        runner_factory: Callable[[], JobRunner] | None = None,
        interactive: bool = True,
        parent=None,
        config: EngineConfig | None = None,
    ) -> None:
        super().__init__(parent)
        self.config = config or EngineConfig(interactive=interactive)
        self._runner_factory = runner_factory or (lambda: JobRunner(self.config))
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._cancelled_ids: set[int] = set()
        self._current: tuple[JobRequest, CancelToken] | None = None
        self.runner: JobRunner | None = None
        #: the last report sent on :attr:`ready` (None until the thread has set up)
        self.report: EngineReady | None = None
        LIVE_THREADS.add(self)

    # -- called from the GUI thread -------------------------------------------------------------
    def submit(self, request: JobRequest) -> int:
        """Queue a job; a queued or running job with the same ``supersede_key`` is cancelled."""
        with self._cond:
            if request.supersede_key is not None:
                for queued in self._queue:
                    if (
                        isinstance(queued, JobRequest)
                        and queued.supersede_key == request.supersede_key
                    ):
                        self._cancelled_ids.add(queued.job_id)
                current = self._current
                if current and current[0].supersede_key == request.supersede_key:
                    current[1].cancel()
            self._queue.append(request)
            self._cond.notify()
        return request.job_id

    def cancel(self, job_id: int) -> None:
        """Interrupt the job if it runs (within one tile/step), or drop it if still queued."""
        with self._cond:
            current = self._current
            if current and current[0].job_id == job_id:
                current[1].cancel()
            elif any(isinstance(q, JobRequest) and q.job_id == job_id for q in self._queue):
                self._cancelled_ids.add(job_id)

    def cancel_queued(self) -> None:
        """Drop every job that has not started; the running one continues."""
        with self._cond:
            self._drop_queued()

    def cancel_all(self) -> None:
        with self._cond:
            self._drop_queued()
            if self._current:
                self._current[1].cancel()

    def _drop_queued(self) -> None:  # caller holds the lock
        self._cancelled_ids.update(q.job_id for q in self._queue if isinstance(q, JobRequest))

    def running_job(self) -> int | None:
        with self._cond:
            return self._current[0].job_id if self._current else None

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything, stop the loop and wait; True when the thread has ended."""
        if not self.isRunning():
            return True
        with self._cond:
            self._drop_queued()
            if self._current:
                self._current[1].cancel()
            self._queue.append(_STOP)
            self._cond.notify()
        return self.wait(timeout_ms)

    # -- the worker thread ----------------------------------------------------------------------
    def run(self) -> None:
        configure_cpu_threads(self.config.cpu_threads)
        torch.set_grad_enabled(False)  # grad mode is per thread: set it in this one
        try:
            self.runner = self._runner_factory()
        except Exception as exc:  # e.g. a bad STUDIO_DEVICE: fail every job with the reason
            self._fail_all(str(exc))
            return
        self.report = engine_report(self.runner.config, self.runner.device_info)
        self.ready.emit(self.report)
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                item = self._queue.popleft()
                if item is _STOP:
                    break
                assert isinstance(item, JobRequest)
                if item.job_id in self._cancelled_ids:
                    self._cancelled_ids.discard(item.job_id)
                    self.message.emit(JobCancelled(item.job_id))
                    continue
                token = CancelToken()
                self._current = (item, token)
            try:
                with torch.inference_mode():
                    for msg in self.runner.run(item, token):
                        self.message.emit(msg)
            finally:
                with self._cond:
                    self._current = None
        self.runner.cache.clear()

    def _fail_all(self, reason: str) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                item = self._queue.popleft()
            if item is _STOP:
                return
            self.message.emit(JobFailed(item.job_id, reason, "error"))
