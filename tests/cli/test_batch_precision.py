"""``studio batch`` under precision "auto": one precision for the whole batch, chosen in the
parent, so the worker count never changes a byte (issue 16).

The measurement is faked to pick bf16 with 2 threads and fp32 with 1, so a worker measuring
for itself (2 threads with one worker, 1 each with two) would choose differently. Workers run
in this process (the fake reaches them; spawned ones would measure for real).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.cli import main
from studio.engine.autotune import FP32_EAGER, Measurement, Variant
from studio.task_kind import TaskKind

UPSCALE = str(TaskKind.UPSCALE)
MODEL = ["--model", "studio-photo-x2"]
BF16 = Variant("bf16")


@pytest.fixture
def measured(monkeypatch, tmp_path) -> list[int]:
    """Fake measuring (bf16 faster with 2 threads, slower with 1); returns the thread count of
    each measurement. Two cores, a tuning file of the test's own, workers in this process."""
    from studio.engine.batch import local
    from studio.engine.tasks import tuned

    calls: list[int] = []

    def fake_measure(build, tile, variants, repeats=1, should_stop=None):
        threads = torch.get_num_threads()
        calls.append(threads)
        bf16_seconds = 0.4 if threads == 2 else 2.0
        return [
            Measurement(FP32_EAGER, 1.0, 0.0, 0.0),
            Measurement(BF16, bf16_seconds, 0.001, 0.01),
        ]

    monkeypatch.setattr(tuned, "measure", fake_measure)
    monkeypatch.setattr("studio.engine.device._cpu_has_bf16", lambda: True)
    monkeypatch.setattr(local, "WorkerProcessExecutor", lambda workers: local.InProcessExecutor())
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_THREADS", "2")
    monkeypatch.delenv("STUDIO_PRECISION", raising=False)
    monkeypatch.delenv("STUDIO_COMPILE", raising=False)
    threads = torch.get_num_threads()
    yield calls
    torch.set_num_threads(threads)


def _images(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(16)
    for i in range(count):
        pixels = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"page{i}.png")
    return folder


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def _spec(src: Path, out: Path, *options: str):
    from studio.batch_cli import _plan
    from studio.cli import _build_parser

    ns = _build_parser().parse_args(["batch", UPSCALE, str(src), str(out), *MODEL, *options])
    _items, spec, _workers, note = _plan(ns.batch_def, ns)
    return spec, note


def test_one_and_two_workers_under_auto_write_the_same_bytes(tmp_path, measured) -> None:
    src = _images(tmp_path / "in")
    runs = {n: tmp_path / f"out{n}" for n in ("1", "2")}
    for n, out in runs.items():
        assert main(["batch", UPSCALE, str(src), str(out), *MODEL, "--workers", n, "--quiet"]) == 0
    one, two = _outputs(runs["1"]), _outputs(runs["2"])
    assert len(one) == 3 and one == two, "the worker count changed the output bytes"
    assert measured == [2], "measured once, in the parent, with every core's threads"

    fixed = tmp_path / "bf16"
    args = ["batch", UPSCALE, str(src), str(fixed), *MODEL, "--precision", "bf16", "--quiet"]
    assert main([*args, "--workers", "2"]) == 0
    assert _outputs(fixed) == one, "the batch ran in the precision it measured fastest"
    fp32 = tmp_path / "fp32"
    args = ["batch", UPSCALE, str(src), str(fp32), *MODEL, "--precision", "fp32", "--quiet"]
    assert main(args) == 0
    assert _outputs(fp32) != one, "bf16 and fp32 differ here, so the check above means something"


def test_the_spec_carries_the_measured_precision_whatever_the_worker_count(
    tmp_path, measured
) -> None:
    src, out = _images(tmp_path / "in"), tmp_path / "out"
    one, note = _spec(src, out, "--workers", "1")
    two, _ = _spec(src, out, "--workers", "2")
    assert (one.engine["precision"], one.engine["compile"]) == ("bf16", "off")
    assert (one.engine["threads"], two.engine["threads"]) == (2, 1)
    assert two.options_hash == one.options_hash, "a resume with 2 workers keeps 1 worker's files"
    assert note == "precision bf16 (measured 2.5x fp32 here on a 28x20 tile, 2 threads)"
    assert measured == [2], "the second plan used the stored choice"
    _, again = _spec(src, out)
    assert again.startswith("precision bf16 (measured before 2.5x fp32")


def test_an_explicit_precision_is_kept_and_a_changed_one_redoes_files(
    tmp_path, measured, capsys
) -> None:
    src, out = _images(tmp_path / "in"), tmp_path / "out"
    spec, note = _spec(src, out, "--precision", "fp32")
    assert spec.engine["precision"] == "fp32" and note == "precision fp32"
    assert measured == [], "a given precision is not measured"
    assert main(["batch", UPSCALE, str(src), str(out), *MODEL, "--quiet"]) == 0
    capsys.readouterr()
    args = ["batch", UPSCALE, str(src), str(out), *MODEL, "--precision", "fp32", "--dry-run"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["redo"] * 3, "fp32 is not auto's bf16"
    assert "precision fp32" in lines[3]


def test_a_classical_method_resolves_without_measuring(tmp_path, measured, capsys) -> None:
    src, out = _images(tmp_path / "in"), tmp_path / "out"
    args = ["batch", UPSCALE, str(src), str(out), "--model", "lanczos", "--dry-run"]
    assert main(args) == 0
    assert "; precision fp32 (nothing to measure)" in capsys.readouterr().out
    assert measured == []


def test_the_editors_batch_measures_in_a_process_of_its_own(tmp_path) -> None:
    """The dialog's core resolves "auto" too: in a spawned process (the editor's thread count
    and memory stay as they are), stored in the tuning file, the spec concrete."""
    from studio.engine.config import EngineConfig
    from studio.engine.jobs import UpscaleParams
    from studio.ui.batch_core import CoreBackend
    from studio.ui.batch_run import BatchFolders

    src, out, tuning = _images(tmp_path / "in"), tmp_path / "out", tmp_path / "tuning.json"
    threads = torch.get_num_threads()
    backend = CoreBackend(EngineConfig(tuning_file=tuning), workers=2)
    plan = backend.plan(UpscaleParams(model="studio-photo-x2"), BatchFolders(str(src), str(out)))
    assert plan.spec.engine["precision"] in ("fp32", "bf16")
    assert plan.spec.engine["compile"] == "off"
    assert plan.notes[1].startswith(f"precision {plan.spec.engine['precision']}")
    assert torch.get_num_threads() == threads
    lanczos = backend.plan(UpscaleParams(model="lanczos"), BatchFolders(str(src), str(out)))
    assert (lanczos.spec.engine["precision"], lanczos.notes[1]) == (
        "fp32",
        "precision fp32 (nothing to measure)",
    )
