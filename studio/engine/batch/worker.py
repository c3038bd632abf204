"""One worker's processing of batch items: the single-file command's steps, model loaded once.

:func:`make_processor` builds a :class:`TaskProcessor` from a :class:`BatchSpec`: one
:class:`~studio.engine.runner.JobRunner` (device, model cache, tuned variants) for the whole
life of the worker, so the model loads on the first item and stays. Each item then goes
through exactly what ``studio <task> IN OUT`` does (memory check from the header, decode, the
mask sized to the image, the job, :func:`~studio.project_io.write_result` with or without
labels), which is why a batch output is byte-identical to the single-file command's. Outputs
are written atomically by the image writer (temporary file, fsync, rename).

A file that cannot be read, decoded or processed gives ``ItemOutcome(ok=False)`` with one line
of reason; only an interrupt (Ctrl-C, SIGTERM made into one) leaves the processor.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from studio.engine.batch.contract import BatchItem, BatchSpec, ItemOutcome
from studio.engine.batch.manifest import file_sha256, item_input_sha256
from studio.engine.config import EngineConfig
from studio.engine.device import configure_cpu_threads
from studio.engine.jobs import CancelToken, JobRequest
from studio.engine.messages import JobCancelled, JobFailed, JobFinished
from studio.engine.runner import JobRunner
from studio.engine.tasks.preflight import ImageSize, check_fits
from studio.errors import StudioError, os_error_message
from studio.imageio import read_mask
from studio.project_io import read_input, read_input_header, write_result


def make_processor(spec: BatchSpec) -> TaskProcessor:
    """The processor of one worker (``spec.engine``: the fields of its :class:`EngineConfig`,
    built at the edge; threads are the worker's share of the cores)."""
    return TaskProcessor(spec)


class TaskProcessor:
    """Processes items one at a time with one job runner (see the module docstring)."""

    def __init__(self, spec: BatchSpec, cancel: CancelToken | None = None) -> None:
        self.spec = spec
        self.config = EngineConfig(**spec.engine)
        configure_cpu_threads(self.config.cpu_threads)
        self.runner = JobRunner(self.config)
        self.cancel = cancel or CancelToken()
        self.out_dir = Path(spec.out_dir)

    def __call__(self, item: BatchItem) -> ItemOutcome:
        started = time.perf_counter()
        input_sha = None
        try:
            if item.mask is not None and not Path(item.mask).is_file():
                raise StudioError(f"no mask for this image ({Path(item.mask).name} not found)")
            input_sha = item_input_sha256(item)
            output = self._process(item)
            output_sha = file_sha256(output)
        except Exception as exc:  # one bad file never stops the batch
            return ItemOutcome(
                item.key,
                False,
                input_sha256=input_sha,
                reason=one_line(exc),
                seconds=time.perf_counter() - started,
            )
        return ItemOutcome(
            item.key,
            True,
            output=item.output,
            input_sha256=input_sha,
            output_sha256=output_sha,
            seconds=time.perf_counter() - started,
        )

    def _process(self, item: BatchItem) -> Path:
        params = self.spec.params
        if item.prompt is not None:
            params = dataclasses.replace(params, prompt=item.prompt, seed=item.seed)
        loaded = None
        if item.source is not None:
            header = read_input_header(item.source)
            size = ImageSize(header.width, header.height, header.channels, header.itemsize)
            check_fits(params, size, self.runner.device_info.memory_budget, decoding=True)
            loaded = read_input(item.source)
            pixels = loaded.pixels
        else:  # a job that reads no picture gets the same 1x1 placeholder as the CLI's
            pixels = np.zeros((1, 1, 3), np.uint8)
        mask = None
        if item.mask is not None:
            h, w = pixels.shape[:2]
            mask = read_mask(item.mask, (w, h))
        image = self._run(JobRequest(params, pixels, mask=mask))
        output = self.out_dir / item.output
        output.parent.mkdir(parents=True, exist_ok=True)
        write_result(output, image, loaded, params, labels=self.spec.labels)
        return output

    def _run(self, request: JobRequest) -> np.ndarray:
        with torch.inference_mode():
            for msg in self.runner.run(request, self.cancel):
                if isinstance(msg, JobFinished):
                    return msg.image
                if isinstance(msg, JobFailed):
                    raise StudioError(msg.message)
                if isinstance(msg, JobCancelled):
                    raise KeyboardInterrupt
        raise StudioError("the job ended without a result")


def one_line(exc: BaseException) -> str:
    """An exception as one line of reason for the manifest and the summary."""
    if isinstance(exc, OSError) and not isinstance(exc, StudioError):
        text = os_error_message(exc)
    elif isinstance(exc, StudioError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
