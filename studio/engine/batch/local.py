"""Running a batch on this machine: in this process, or in N worker processes.

Each worker process builds its processor once (:func:`~studio.engine.batch.worker.make_processor`,
in the pool's initializer), so the model loads once per process; items are handed out one at a
time (a few queued per worker, so a slow file never holds back a chunk of others) and outcomes
come back as they finish. Processes are spawned, never forked: a forked copy of a parent that
already started torch's thread pools can deadlock.

How many workers ("auto", :func:`plan_workers`): on a GPU one (the processes would share one
device and each hold the model); on the CPU as many as fit in the memory free now, each costing
a process's runtime, its model weights and the largest input's job memory (the engine's own
estimates, :mod:`studio.engine.tasks.preflight`), at most one per core and one per
:data:`MIN_ITEMS_PER_WORKER` items. Each worker gets ``cores // workers`` threads.

Interrupting: worker processes ignore SIGINT (a terminal's Ctrl-C reaches the whole process
group; the parent decides) and turn SIGTERM into an interrupt, so stopping them removes any
half-written temporary file as on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

from studio.engine.batch.contract import BatchItem, BatchSpec, ItemOutcome
from studio.engine.batch.worker import make_processor
from studio.errors import StudioError

#: resident memory of a worker process before its model: Python, torch and its thread pools
PROCESS_OVERHEAD = 512 << 20
#: queued items per worker beyond the one it runs
QUEUED_PER_WORKER = 1
#: "auto" starts another worker process only for this many items each: a spawned worker pays
#: a few seconds (torch import, model load) before its first file (16 small upscales ran at
#: 1.5 files/s in this process and 0.84 files/s in two fresh ones on a loaded 2-core machine)
MIN_ITEMS_PER_WORKER = 16


class InProcessExecutor:
    """One worker: this process (no start-up cost; the processor lives as long as the run)."""

    def run(self, spec: BatchSpec, items: Iterable[BatchItem]) -> Iterator[ItemOutcome]:
        processor = None
        for item in items:
            if processor is None:  # nothing to load for an empty batch
                processor = make_processor(spec)
            yield processor(item)


class WorkerProcessExecutor:
    """``workers`` spawned processes, each with its own processor."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers

    def run(self, spec: BatchSpec, items: Iterable[BatchItem]) -> Iterator[ItemOutcome]:
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=get_context("spawn"),
            initializer=_start_worker,
            initargs=(spec,),
        )
        pending: set[Future[ItemOutcome]] = set()
        try:
            for item in items:
                if len(pending) >= self.workers * (1 + QUEUED_PER_WORKER):
                    yield from _finished(pending)
                pending.add(pool.submit(_process, item))
            while pending:
                yield from _finished(pending)
        except BrokenProcessPool:
            raise StudioError(
                "a worker process died (out of memory?); run the batch again to resume, with "
                "fewer --workers"
            ) from None
        finally:
            _stop(pool, graceful=not pending)


def _finished(pending: set[Future[ItemOutcome]]) -> Iterator[ItemOutcome]:
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        pending.discard(future)
        yield future.result()


def _stop(pool: ProcessPoolExecutor, graceful: bool) -> None:
    if graceful:
        pool.shutdown(wait=True)
        return
    # interrupted: drop queued items and stop the running ones (they remove their temporary
    # files on SIGTERM); files already written stay, and the manifest names them
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


_processor = None


def _start_worker(spec: BatchSpec) -> None:
    global _processor
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    _processor = make_processor(spec)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _process(item: BatchItem) -> ItemOutcome:
    assert _processor is not None, "the worker's initializer did not run"
    return _processor(item)


# -- how many workers -----------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerPlan:
    """Workers, threads each, and the memory arithmetic behind the count."""

    workers: int
    threads: int
    per_worker_bytes: int
    available_bytes: int
    device: str

    def summary(self) -> str:
        each = _mib(self.per_worker_bytes)
        return (
            f"{self.workers} worker{'s' if self.workers > 1 else ''} x {self.threads} "
            f"thread{'s' if self.threads > 1 else ''} on {self.device}, about {each} each "
            f"({_mib(self.available_bytes)} free)"
        )


def plan_workers(
    spec: BatchSpec,
    items: list[BatchItem],
    requested: int | None = None,
    *,
    cores: int | None = None,
    available: int | None = None,
) -> WorkerPlan:
    """The worker count (``requested`` wins over "auto") and threads per worker."""
    from studio.engine.config import EngineConfig
    from studio.engine.device import choose_device, describe
    from studio.engine.tasks.preflight import available_memory

    config = EngineConfig(**spec.engine)
    device = choose_device(config.device, strict=False)
    budget = describe(device, config.memory_budget).memory_budget
    cores = cores or (config.threads if config.threads else os.cpu_count() or 1)
    free = available_memory() if available is None else available
    each = PROCESS_OVERHEAD + model_bytes(spec.params) + largest_job_bytes(spec, items, budget)
    if requested is not None:
        workers = max(1, requested)
    elif device.type != "cpu":
        workers = 1
    else:
        workers = max(1, min(cores, free // max(each, 1), len(items) // MIN_ITEMS_PER_WORKER))
    threads = max(1, cores // workers)
    name = str(device) if device.type != "cpu" else f"cpu ({cores} cores)"
    return WorkerPlan(workers, threads, each, free, name)


def model_bytes(params: object) -> int:
    """Bytes of the weight files of the registry model ``params`` names (0 when none)."""
    from studio.models.loading import registered_files
    from studio.models.registry import get_model

    total = 0
    for attr in ("model", "method", "upscale_model"):
        name = getattr(params, attr, None)
        if not isinstance(name, str) or not name:
            continue
        try:
            total += sum(path.stat().st_size for path, _ in registered_files(get_model(name)))
        except (StudioError, OSError):
            if os.path.isfile(name):
                total += os.path.getsize(name)
    return total


def largest_job_bytes(spec: BatchSpec, items: list[BatchItem], budget: int) -> int:
    """Working memory of the largest input (from headers; the budget when unknown)."""
    from studio.engine.batch.plan import input_sizes
    from studio.engine.tasks.preflight import job_bytes

    sizes = input_sizes(items)
    if sizes is None:
        return budget
    need = (job_bytes(spec.params, size, budget) + 2 * size.pixel_bytes for size in sizes)
    return max(need, default=0) or budget


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{max(1, n // 2**20)} MiB"
