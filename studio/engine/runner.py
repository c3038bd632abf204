"""Runs one job: turns a task generator's events into typed messages. Plain Python, no Qt.

The CLI iterates :meth:`JobRunner.run` directly; the GUI's engine thread does the same and emits
each message through one Qt signal.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator

import torch

from studio.engine.cache import ModelCache
from studio.engine.config import EngineConfig
from studio.engine.device import DeviceInfo, choose_device, describe
from studio.engine.events import Result
from studio.engine.jobs import CancelToken, JobRequest
from studio.engine.messages import (
    JobCancelled,
    JobFailed,
    JobStarted,
    Message,
    finished,
    stamp,
)
from studio.engine.task_table import find
from studio.engine.tasks.context import TaskContext
from studio.engine.tiling import is_out_of_memory
from studio.errors import Cancelled as CancelledSignal
from studio.errors import StudioError


class JobRunner:
    """Owns the device description and the model cache; runs jobs one at a time, each with
    the generator its task's row names (:mod:`studio.engine.task_table`)."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        device: torch.device | None = None,
        cache: ModelCache | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        device = device or choose_device(self.config.device, strict=False)
        self.device_info: DeviceInfo = describe(device, self.config.memory_budget)
        self.cache = cache or ModelCache()

    def run(self, request: JobRequest, cancel: CancelToken | None = None) -> Iterator[Message]:
        """Messages for one job, ending with exactly one terminal message."""
        cancel = cancel or CancelToken()
        job_id = request.job_id
        yield JobStarted(job_id, request.task)
        started = time.perf_counter()
        task = find(request.task)
        if task is None:
            yield JobFailed(job_id, f"unknown task '{request.task}'", "bad_input")
            return
        ctx = TaskContext(cancel, self.device_info, self.cache, self.config)
        try:
            cancel.check()
            gen = task.run(request, ctx)
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result: Result = stop.value
                    break
                yield stamp(job_id, event)
                cancel.check()
        except CancelledSignal:
            yield JobCancelled(job_id)
            return
        except StudioError as exc:
            yield JobFailed(job_id, str(exc), exc.kind)
            return
        except Exception as exc:  # a bug or a library error: report it, keep the engine alive
            kind = "oom" if is_out_of_memory(exc) else "error"
            message = _readable(exc, kind)
            yield JobFailed(job_id, message, kind, traceback.format_exc())
            return
        timings = {"total_s": time.perf_counter() - started, "load_s": ctx.load_seconds}
        yield finished(job_id, result, timings)


def _readable(exc: BaseException, kind: str) -> str:
    if kind == "oom":
        return "out of memory: try a smaller tile size, a smaller model or a smaller image"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
