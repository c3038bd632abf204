"""Running a planned batch: outcomes from an executor, each recorded in the manifest as it
arrives, a progress line, and a summary.

The parent alone writes the manifest, one durable record per outcome (see
:mod:`studio.engine.batch.manifest`). An interrupt (Ctrl-C, SIGTERM made into one) stops the
executor (queued items are dropped, running ones stopped), keeps every record written so far,
and ends the run with ``interrupted`` set: running the same command again resumes.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from studio.engine.batch.contract import BatchItem, BatchSpec, Executor, ItemOutcome
from studio.engine.batch.manifest import Manifest


@dataclass(frozen=True)
class BatchStatus:
    """Where a run stands after an outcome (what a progress display shows)."""

    done: int
    total: int
    failed: int
    elapsed_s: float
    outcome: ItemOutcome

    @property
    def rate(self) -> float:
        """Items per second so far."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


@dataclass
class BatchSummary:
    """What a run did. ``skipped``: items the manifest already had (not run again)."""

    total: int
    skipped: int = 0
    written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: the signal that stopped the run (SIGINT for Ctrl-C), None when it ran to the end
    interrupted: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.interrupted is None

    def lines(self) -> list[str]:
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        head = (
            f"{self.written} written, {len(self.failed)} failed, {self.skipped} already done "
            f"of {self.total} in {self.seconds:.1f} s ({rate:.2f} files/s)"
        )
        out = [head]
        if self.interrupted is not None:
            left = self.total - self.skipped - self.written - len(self.failed)
            out.append(f"stopped with {left} left; run the same command again to resume")
        out += [f"failed: {key}: {reason}" for key, reason in self.failed]
        return out


def run_batch(
    spec: BatchSpec,
    items: Iterable[BatchItem],
    executor: Executor,
    manifest: Manifest,
    progress: Callable[[BatchStatus], None] | None = None,
    *,
    total: int | None = None,
    skipped: int = 0,
) -> BatchSummary:
    """Run ``items`` (the ones still to do) with ``executor``, recording each outcome."""
    items = list(items)
    total = len(items) if total is None else total
    summary = BatchSummary(total=total + skipped, skipped=skipped)
    started = time.monotonic()
    outcomes = recorded(spec, executor.run(spec, items), manifest)
    try:
        for outcome in outcomes:
            if outcome.ok:
                summary.written += 1
            else:
                summary.failed.append((outcome.key, outcome.reason or "failed"))
            summary.seconds = time.monotonic() - started
            if progress is not None:
                done = summary.written + len(summary.failed)
                progress(BatchStatus(done, total, len(summary.failed), summary.seconds, outcome))
    except KeyboardInterrupt as exc:
        summary.interrupted = getattr(exc, "signum", signal.SIGINT)
    finally:
        outcomes.close()
        summary.seconds = time.monotonic() - started
    return summary


def recorded(
    spec: BatchSpec, outcomes: Iterator[ItemOutcome], manifest: Manifest
) -> Generator[ItemOutcome, None, None]:
    """Each outcome appended to the manifest as it arrives, then passed on. Closing this (or
    running out) closes ``outcomes``, which stops the executor's workers, and the manifest:
    a caller may stop reading at any moment (the editor's Cancel)."""
    try:
        for outcome in outcomes:
            manifest.append(outcome, spec.options_hash)
            yield outcome
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
        manifest.close()


class ProgressLine:
    """One updating line on a terminal (``\\r``): count, rate, ETA, failures; a plain line per
    tenth of the batch when stderr is not a terminal; failures as their own lines."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_tenth = -1
        self._drawn = False

    def __call__(self, status: BatchStatus) -> None:
        if not self.enabled:
            return
        if not status.outcome.ok:
            self._clear()
            print(f"failed: {status.outcome.key}: {status.outcome.reason}", file=self.stream)
        eta = f"ETA {status.eta_s:.0f} s" if status.eta_s is not None else "ETA ?"
        failed = f", {status.failed} failed" if status.failed else ""
        text = f"{status.done}/{status.total} files, {status.rate:.2f} files/s, {eta}{failed}"
        if self.tty:
            self.stream.write(f"\r{text}\033[K")
            self.stream.flush()
            self._drawn = True
        elif (tenth := status.done * 10 // max(status.total, 1)) != self._last_tenth:
            self._last_tenth = tenth
            print(text, file=self.stream, flush=True)

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self._drawn = False

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
