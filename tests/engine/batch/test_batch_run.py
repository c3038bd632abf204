"""Running a batch in this process with a task of the test's own: prompts and seeds reach each
item, every outcome is recorded, an interrupt keeps what was recorded, the progress line."""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from studio.engine.batch.contract import BatchItem, ItemOutcome
from studio.engine.batch.local import MIN_ITEMS_PER_WORKER, InProcessExecutor, plan_workers
from studio.engine.batch.manifest import Manifest
from studio.engine.batch.plan import PROMPT_SEED_STRIDE, make_spec, plan_batch
from studio.engine.batch.run import BatchStatus, ProgressLine, run_batch
from studio.engine.events import Progress, Result
from studio.engine.task_table import TaskDef, register, unregister
from studio.geometry import Rect
from studio.task_kind import TaskKind


class PaintKind(StrEnum):
    PAINT = "paint-seed"


@dataclass(frozen=True)
class PaintParams:
    """A 4x4 picture whose grey level is the seed (mod 256); the prompt goes in the labels."""

    prompt: str = ""
    seed: int = 0

    task: ClassVar[PaintKind] = PaintKind.PAINT


def run_paint(request, ctx):
    yield Progress(0, 1, "painting")
    if request.params.prompt == "explode":
        raise ValueError("cannot paint that\nsecond line")
    grey = np.full((4, 4, 3), request.params.seed % 256, np.uint8)
    return Result(grey, Rect(0, 0, 4, 4), {})


@pytest.fixture
def paint_task():
    register(TaskDef(kind=PaintKind.PAINT, title="Paint", params=PaintParams, run=run_paint))
    yield
    unregister(PaintKind.PAINT)


def test_each_prompt_and_seed_reaches_its_item_and_every_outcome_is_recorded(
    paint_task, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red apple\n# skipped\nexplode\n", encoding="utf-8")
    out = tmp_path / "out"
    items = plan_batch(TaskKind.GENERATE, None, out, prompts=str(prompts), count=2, seed=3)
    spec = make_spec(PaintKind.PAINT, PaintParams(), out, {"device": "cpu"})
    manifest = Manifest(out)
    seen: list[BatchStatus] = []
    summary = run_batch(spec, items, InProcessExecutor(), manifest, seen.append)
    assert summary.written == 2 and [k for k, _ in summary.failed] == [
        "prompt-0003-01",
        "prompt-0003-02",
    ]
    assert summary.failed[0][1] == "ValueError: cannot paint that", "one line of reason"
    for k, seed in enumerate((3, 4)):
        image = Image.open(out / f"0001-{k + 1:02d}.png")
        assert np.asarray(image)[0, 0, 0] == seed
        assert "a red apple" in image.info["parameters"]
    records = manifest.records()
    assert set(records) == {i.key for i in items}
    assert records["prompt-0003-02"]["ok"] is False
    assert [s.done for s in seen] == [1, 2, 3, 4] and seen[-1].failed == 2
    split = manifest.classify(spec, items)
    assert [i.seed for i in split.redo] == [3 + 2 * PROMPT_SEED_STRIDE, 4 + 2 * PROMPT_SEED_STRIDE]
    assert len(split.done) == 2


class _InterruptedAfter:
    """An executor whose run is interrupted (Ctrl-C) after ``n`` outcomes."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False

    def run(self, spec, items):
        try:
            for index, item in enumerate(items):
                if index == self.n:
                    raise KeyboardInterrupt
                yield ItemOutcome(item.key, True, output=item.output, input_sha256="x")
        finally:
            self.closed = True


def test_an_interrupt_keeps_the_records_and_says_how_to_resume(tmp_path: Path) -> None:
    items = [BatchItem(f"k{i}", f"k{i}.png", prompt="p", seed=i) for i in range(5)]
    spec = make_spec(TaskKind.GENERATE, PaintParams(), tmp_path)
    executor = _InterruptedAfter(2)
    summary = run_batch(spec, items, executor, Manifest(tmp_path), skipped=1)
    assert executor.closed and summary.interrupted is not None and not summary.ok
    assert set(Manifest(tmp_path).records()) == {"k0", "k1"}
    assert summary.lines()[1] == "stopped with 3 left; run the same command again to resume"
    assert summary.lines()[0].startswith("2 written, 0 failed, 1 already done of 6 in ")


def test_the_progress_line_counts_rate_eta_and_failures() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream=stream)
    bad = ItemOutcome("b.png", False, reason="damaged")
    line(BatchStatus(1, 4, 0, 2.0, ItemOutcome("a.png", True)))
    line(BatchStatus(2, 4, 1, 4.0, bad))
    assert stream.getvalue().splitlines() == [
        "1/4 files, 0.50 files/s, ETA 6 s",
        "failed: b.png: damaged",
        "2/4 files, 0.50 files/s, ETA 4 s, 1 failed",
    ]
    quiet = io.StringIO()
    ProgressLine(enabled=False, stream=quiet)(BatchStatus(1, 1, 1, 1.0, bad))
    assert quiet.getvalue() == ""


def test_worker_count_follows_free_memory_and_cores(tmp_path: Path) -> None:
    items = [BatchItem(f"k{i}", f"k{i}.png", prompt="p", seed=i) for i in range(64)]
    spec = make_spec(PaintKind.PAINT, PaintParams(), tmp_path, {"device": "cpu"})
    roomy = plan_workers(spec, items, cores=4, available=64 << 30)
    assert (roomy.workers, roomy.threads) == (4, 1)
    tight = plan_workers(spec, items, cores=4, available=roomy.per_worker_bytes * 2 + 1)
    assert (tight.workers, tight.threads) == (2, 2)
    assert plan_workers(spec, items, cores=4, available=1).workers == 1
    few = plan_workers(spec, items[: MIN_ITEMS_PER_WORKER * 2], cores=4, available=64 << 30)
    assert few.workers == 2, "a worker process is started only for enough files to repay it"
    assert plan_workers(spec, items[:1], cores=4, available=64 << 30).workers == 1
    forced = plan_workers(spec, items, 3, cores=4, available=1)
    assert (forced.workers, forced.threads) == (3, 1)
