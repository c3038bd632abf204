"""Run a batch over a Ray cluster: one actor per GPU (or CPU slot), each holding the model.

:class:`RayExecutor` follows :mod:`studio.engine.batch.contract`: every actor builds one
processor from the :class:`BatchSpec` (the model loads once per actor), items go out as actor
tasks with a bounded number in flight (``ray.wait``), and outcomes come back as they finish.
Ray does the scheduling, transport and placement; this module only decides how many actors,
what each task carries, and writes what comes back.

How files travel (``transfer``):

* ``"shared"``: the actor reads ``item.source`` and writes into ``spec.out_dir`` itself, as the
  local executors do; every node must see the input and output folders at the same paths (a
  local instance, or a cluster on a shared file system).
* ``"bytes"``: the driver reads each input (and mask) and passes the bytes as task arguments
  (Ray's object store); the actor stages them in a private temporary folder, runs the same
  processor there, and returns the output bytes, which the driver checks against the outcome's
  hash and writes atomically into ``spec.out_dir``. Nodes need to share nothing but the Python
  environment and the model files.
* ``"auto"`` (default): ``"shared"`` for a local instance started here, ``"bytes"`` for a
  cluster given by address.

Either way the processor, and so every output byte, is the same; paths inside outcomes are
mapped back to the driver's, so a reason names the artist's file, not a staging copy.

``ray`` is imported only when a batch runs (the ``studio[cluster]`` extra): Studio runs
without it. The address is what ``ray.init`` takes (``"auto"``, ``"HOST:6379"`` from a cluster
node, ``"ray://HOST:10001"`` with Ray Client installed).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from studio.atomic_write import write_bytes_atomic
from studio.engine.batch.contract import BatchItem, BatchSpec, ItemOutcome, ItemProcessor
from studio.errors import BadInputError, StudioError, os_error_message

TRANSFERS = ("auto", "shared", "bytes")
#: tasks queued per actor beyond the running one: the next input is already there when an item
#: finishes, and a Ctrl-C or a dead actor strands little work
QUEUED_PER_ACTOR = 1

ProcessorFactory = Callable[[BatchSpec], ItemProcessor]


def _default_factory(spec: BatchSpec) -> ItemProcessor:
    from studio.engine.batch.worker import make_processor

    return make_processor(spec)


class _BatchActor:
    """The body of one Ray actor: a processor built once, then one item per call."""

    def __init__(self, spec: BatchSpec, factory: ProcessorFactory | None, staged: bool) -> None:
        self._stage: Path | None = None
        self._error: BaseException | None = None
        self._processor: ItemProcessor | None = None
        self._out_dir = spec.out_dir
        if staged:
            self._stage = Path(tempfile.mkdtemp(prefix="studio-batch-"))
            spec = replace(spec, out_dir=str(self._stage / "out"))
            (self._stage / "out").mkdir()
        try:
            self._processor = (factory or _default_factory)(spec)
        except Exception as exc:  # reported once by ready(), not per item
            self._error = exc

    def ready(self) -> BaseException | None:
        """None once the processor is built, else why it could not be (model missing, ...)."""
        return self._error

    def process(self, item: BatchItem) -> ItemOutcome:
        """Process an item whose files this node sees at their own paths."""
        return self._run(item)

    def process_bytes(
        self, item: BatchItem, source: bytes | None, mask: bytes | None
    ) -> tuple[ItemOutcome, bytes | None]:
        """Process an item from its input bytes; return the outcome and the output's bytes."""
        assert self._stage is not None
        work = Path(tempfile.mkdtemp(dir=self._stage, prefix="item-"))
        staged = item
        try:
            # a file missing on the driver is missing here too, so the processor says so
            if item.source is not None:
                staged = replace(staged, source=_stage_file(work / "in", item.source, source))
            if item.mask is not None:
                staged = replace(staged, mask=_stage_file(work / "mask", item.mask, mask))
            (self._stage / "out" / item.output).parent.mkdir(parents=True, exist_ok=True)
            outcome = self._run(staged)
            data = None
            written = self._stage / "out" / item.output
            if outcome.ok:
                data = written.read_bytes()
            written.unlink(missing_ok=True)
            renames = {str(self._stage / "out"): self._out_dir}
            if staged.source and item.source:
                renames[staged.source] = item.source
            if staged.mask and item.mask:
                renames[staged.mask] = item.mask
            return _renamed(outcome, renames), data
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, item: BatchItem) -> ItemOutcome:
        if self._processor is None:
            return ItemOutcome(item.key, ok=False, reason=f"worker not ready: {self._error}")
        try:
            return self._processor(item)
        except Exception as exc:  # the contract says it returns; a bug must not stop the batch
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
            return ItemOutcome(item.key, ok=False, reason=reason)

    def close(self) -> None:
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)


def _stage_file(folder: Path, original: str, data: bytes | None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(original).name  # keeps the suffix, which readers go by
    if data is not None:
        path.write_bytes(data)
    return str(path)


def _renamed(outcome: ItemOutcome, renames: dict[str, str]) -> ItemOutcome:
    """The outcome with staging paths in ``output`` and ``reason`` put back as the driver's."""

    def fix(text: str | None) -> str | None:
        if text is None:
            return None
        for old in sorted(renames, key=len, reverse=True):  # a file's path before its folder's
            text = text.replace(old, renames[old])
        return text

    return replace(outcome, output=fix(outcome.output), reason=fix(outcome.reason))


class RayExecutor:
    """Runs a batch on Ray (see the module docstring).

    ``address``: a running cluster's address, or None to start a local instance (shut down when
    the batch ends; an instance this process already runs is used and left running).
    ``workers``: actors to start; None = one per GPU of the cluster, or one per CPU when it has
    none (never more than there are). On CPUs each actor reserves an equal share of the
    cluster's cores and runs that many threads; on GPUs one core, and threads for its node's
    cores per GPU (unless ``spec.engine`` fixes ``threads``).
    ``make_processor``: builds an actor's processor; default ``worker.make_processor``.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        *,
        transfer: str = "auto",
        make_processor: ProcessorFactory | None = None,
    ) -> None:
        if transfer not in TRANSFERS:
            raise BadInputError(f"transfer must be one of {', '.join(TRANSFERS)}")
        if workers is not None and workers < 1:
            raise BadInputError("workers must be at least 1")
        self.address = address
        self.workers = workers
        self.transfer = transfer
        self._factory = make_processor

    def run(self, spec: BatchSpec, items: Iterable[BatchItem]) -> Iterator[ItemOutcome]:
        """Yield one outcome per item as items finish; Ctrl-C (or closing the iterator) cancels
        the queued tasks, stops the actors and the local instance."""
        ray = import_ray()
        started = _connect(ray, self.address, self.workers)
        actors: list[Any] = []
        pending: dict[Any, tuple[BatchItem, int]] = {}
        try:
            staged = self.transfer == "bytes" or (self.transfer == "auto" and bool(self.address))
            actors = self._start_actors(ray, spec, staged)
            yield from self._stream(ray, spec, items, actors, pending, staged)
            # only when idle: on Ctrl-C the actors are killed at once (staging left in /tmp)
            with contextlib.suppress(Exception):
                ray.get([actor.close.remote() for actor in actors], timeout=30)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
            if started:
                ray.shutdown()

    def _start_actors(self, ray: Any, spec: BatchSpec, staged: bool) -> list[Any]:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        if gpus:
            count = min(self.workers or gpus, gpus)
            # one core reserved (a CPU-only head node must not make a GPU actor unplaceable);
            # threads for decoding and encoding: the GPU nodes' cores per GPU
            options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
            threads = _cores_per_gpu(ray)
        else:
            # more actors than cores would wait for a slot forever: one per core at most
            count = min(self.workers or cpus, cpus)
            threads = max(1, cpus // count)
            options = {"num_cpus": threads}
        if spec.engine.get("threads") is None:
            spec = replace(spec, engine={**spec.engine, "threads": threads})
        # a crashed actor comes back (model reloaded) for the next items; the item it was on
        # is not retried, so an input that kills its worker fails once instead of forever
        remote = ray.remote(max_restarts=2, max_task_retries=0, **options)(_BatchActor)
        actors = [remote.remote(spec, self._factory, staged) for _ in range(count)]
        for error in ray.get([a.ready.remote() for a in actors]):
            if error is not None:
                raise error if isinstance(error, StudioError) else StudioError(str(error))
        return actors

    def _stream(
        self,
        ray: Any,
        spec: BatchSpec,
        items: Iterable[BatchItem],
        actors: list[Any],
        pending: dict[Any, tuple[BatchItem, int]],
        staged: bool,
    ) -> Iterator[ItemOutcome]:
        load = [0] * len(actors)
        limit = 1 + QUEUED_PER_ACTOR
        masks: dict[str, Any] = {}  # one mask for every item is put in the object store once
        queue = iter(items)
        exhausted = False
        while True:
            while not exhausted and min(load) < limit:
                item = next(queue, None)
                if item is None:
                    exhausted = True
                    break
                index = load.index(min(load))
                if not staged:
                    ref = actors[index].process.remote(item)
                else:
                    try:
                        source, mask = _read_inputs(ray, item, masks)
                    except OSError as exc:
                        yield ItemOutcome(item.key, ok=False, reason=_os_reason(exc))
                        continue
                    ref = actors[index].process_bytes.remote(item, source, mask)
                pending[ref] = (item, index)
                load[index] += 1
            if not pending:
                return
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            item, index = pending.pop(ref)
            load[index] -= 1
            yield self._collect(ray, spec, item, ref, staged)

    def _collect(self, ray: Any, spec: BatchSpec, item: BatchItem, ref: Any, staged: bool):
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            return ItemOutcome(item.key, ok=False, reason=f"worker died: {_first_line(exc)}")
        except ray.exceptions.RayError as exc:
            return ItemOutcome(item.key, ok=False, reason=f"ray: {_first_line(exc)}")
        if not staged:
            return result
        outcome, data = result
        if not outcome.ok:
            return outcome
        if data is None or hashlib.sha256(data).hexdigest() != outcome.output_sha256:
            return replace(outcome, ok=False, reason="output damaged in transfer")
        target = Path(spec.out_dir) / item.output
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(target, data)
        except OSError as exc:
            return replace(outcome, ok=False, reason=_os_reason(exc))
        return outcome


def _cores_per_gpu(ray: Any) -> int:
    nodes = [node.get("Resources") or {} for node in ray.nodes() if node.get("Alive")]
    shares = [int(r.get("CPU", 1) // r["GPU"]) for r in nodes if r.get("GPU")]
    return max(1, min(shares, default=1))


def _read_inputs(ray: Any, item: BatchItem, masks: dict[str, Any]) -> tuple[bytes | None, Any]:
    """The item's input and mask bytes (None for a missing file: the processor reports it)."""
    source = _read_if_present(item.source) if item.source else None
    mask = None
    if item.mask:
        if item.mask not in masks:
            data = _read_if_present(item.mask)
            masks[item.mask] = None if data is None else ray.put(data)
        mask = masks[item.mask]
    return source, mask


def _read_if_present(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def _os_reason(exc: OSError) -> str:
    return os_error_message(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def import_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BadInputError(
            "--ray needs Ray: pip install 'studio[cluster]' (or: pip install 'ray>=2.60,<2.61')"
        ) from None
    return ray


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Connect to ``address`` or start a local instance; True when this call did (so the batch
    disconnects, or stops the local instance, at its end).

    ``ray.init`` turns usage statistics off by itself for release wheels; no dashboard, and
    workers' logs stay in Ray's session folder instead of the batch's terminal.
    """
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count() or 1, **quiet)
        return True
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BadInputError(
            f"cannot reach the Ray cluster at {address} ({exc}); is it running, and does this "
            "machine have its token (RAY_AUTH_MODE=token, ~/.ray/auth_token)?"
        ) from None
    return True
