"""Runs one job: turns a task generator's events into typed messages. Plain Python, no Qt.

The CLI iterates :meth:`JobRunner.run` directly; the GUI's engine thread does the same and emits
each message through one Qt signal.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Generator, Iterator

import torch

from studio.engine.cache import ModelCache
from studio.engine.config import EngineConfig
from studio.engine.device import DeviceInfo, choose_device, describe
from studio.engine.jobs import CancelToken, JobRequest
from studio.engine.messages import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
    Message,
    ModelLoading,
    TileReady,
    frozen_array,
)
from studio.engine.tasks.context import TaskContext
from studio.engine.tasks.events import LoadingModel, Partial, Progress, Result, TaskEvent
from studio.engine.tiling import is_out_of_memory
from studio.errors import JobCancelled as CancelledSignal
from studio.errors import StudioError

TaskFn = Callable[[JobRequest, TaskContext], Generator[TaskEvent, None, Result]]


def _task_table() -> dict[str, TaskFn]:
    from studio.engine.tasks.generate import run_generate
    from studio.engine.tasks.inpaint import run_inpaint, run_outpaint
    from studio.engine.tasks.stylize import run_stylize
    from studio.engine.tasks.upscale import run_upscale

    return {
        "upscale": run_upscale,
        "inpaint": run_inpaint,
        "outpaint": run_outpaint,
        "stylize": run_stylize,
        "generate": run_generate,
    }


class JobRunner:
    """Owns the device description and the model cache; runs jobs one at a time."""

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
        self.tasks: dict[str, TaskFn] = _task_table()

    def run(self, request: JobRequest, cancel: CancelToken | None = None) -> Iterator[Message]:
        """Messages for one job, ending with exactly one terminal message."""
        cancel = cancel or CancelToken()
        job_id = request.job_id
        yield JobStarted(job_id, request.task)
        started = time.perf_counter()
        task = self.tasks.get(request.task)
        if task is None:
            yield JobFailed(job_id, f"unknown task '{request.task}'", "bad_input")
            return
        ctx = TaskContext(cancel, self.device_info, self.cache, self.config)
        try:
            cancel.check()
            gen = task(request, ctx)
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result: Result = stop.value
                    break
                yield self._message(job_id, event)
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
        timings = {"total_s": time.perf_counter() - started}
        yield JobFinished(job_id, frozen_array(result.image), result.rect, timings, result.info)

    @staticmethod
    def _message(job_id: int, event: TaskEvent) -> Message:
        if isinstance(event, Progress):
            eta = None
            if event.elapsed_s is not None and event.done > 0:
                eta = event.elapsed_s / event.done * (event.total - event.done)
            return JobProgress(job_id, event.done, event.total, event.stage, eta)
        if isinstance(event, Partial):
            return TileReady(
                job_id, event.rect, frozen_array(event.pixels), event.out_size, event.final
            )
        if isinstance(event, LoadingModel):
            return ModelLoading(job_id, event.model_id)
        raise TypeError(f"task yielded {type(event).__name__}, not a task event")


def _readable(exc: BaseException, kind: str) -> str:
    if kind == "oom":
        return "out of memory: try a smaller tile size, a smaller model or a smaller image"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
