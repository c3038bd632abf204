"""``studio batch``: resumable after SIGKILL, failures recorded, the single-file command's bytes.

The real ``studio-photo-x2`` upscaler on small random images (fp32, so no precision is measured
and every run is reproducible); each output is compared byte for byte, metadata included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine.batch.manifest import MANIFEST_NAME
from studio.task_kind import TaskKind

UPSCALE = str(TaskKind.UPSCALE)
MODEL = ["--model", "studio-photo-x2"]


@pytest.fixture(autouse=True)
def fixed_precision(monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_PRECISION", "fp32")


def _images(folder: Path, count: int, side: int = 24) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count * 1000 + side)
    for i in range(count):
        pixels = rng.integers(0, 256, (side, side + 4, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"page{i:02d}.png")
    return folder


def _records(out: Path) -> list[dict]:
    path = out / MANIFEST_NAME
    if not path.exists():
        return []
    found = []
    for line in path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):  # the torn line of a killed run
            found.append(json.loads(line))
    return found


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def test_a_killed_batch_resumes_writing_each_output_once_as_a_one_shot_run(tmp_path) -> None:
    src, out, once = _images(tmp_path / "in", 12, side=112), tmp_path / "out", tmp_path / "once"
    command = [sys.executable, "-m", "studio", "batch", UPSCALE, str(src), str(out), *MODEL]
    command += ["--workers", "1", "--quiet"]
    run = subprocess.Popen(command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(_records(out)) < 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait()
    before = {r["key"]: r for r in _records(out)}
    assert run.returncode == -signal.SIGKILL and 3 <= len(before) < 12, "killed midway"
    stats = {k: os.stat(out / r["output"]) for k, r in before.items()}

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    records = _records(out)
    assert Counter(r["key"] for r in records if r["ok"]) == {
        f"page{i:02d}.png": 1 for i in range(12)
    }
    for key, st in stats.items():  # what was recorded before the kill was not written again
        now = os.stat(out / before[key]["output"])
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), key
    assert main(["batch", UPSCALE, str(src), str(once), *MODEL, "--workers", "1", "--quiet"]) == 0
    assert _outputs(out) == _outputs(once) and len(_outputs(once)) == 12
    leftovers = [
        p.name for p in out.iterdir() if p.name.startswith(".") and p.name != MANIFEST_NAME
    ]
    assert leftovers == [], "the killed writer's temporary file is cleaned up on resume"


def test_corrupt_inputs_are_recorded_with_one_line_and_the_batch_goes_on(tmp_path, capsys) -> None:
    src, out = _images(tmp_path / "in", 3), tmp_path / "out"
    good = (src / "page00.png").read_bytes()
    (src / "cut.png").write_bytes(good[: len(good) // 2])
    (src / "text.jpg").write_text("not a picture")
    args = ["batch", UPSCALE, str(src), str(out), *MODEL, "--workers", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    failed = {r["key"]: r["reason"] for r in _records(out) if not r["ok"]}
    assert set(failed) == {"cut.png", "text.jpg"}
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert sorted(_outputs(out)) == ["page00.png", "page01.png", "page02.png"]
    assert "3 written, 2 failed, 0 already done of 5" in err and "failed: cut.png: " in err
    assert main(args) == 1, "failures are retried on resume, and fail again"
    again = _records(out)[5:]
    assert sorted(r["key"] for r in again) == ["cut.png", "text.jpg"]


@pytest.mark.parametrize("labels", [[], ["--no-metadata"]])
def test_outputs_are_the_single_file_commands_bytes(tmp_path, labels) -> None:
    src, out = _images(tmp_path / "in", 2), tmp_path / "out"
    assert main(["batch", UPSCALE, str(src), str(out), *MODEL, "--quiet", *labels]) == 0
    for name in ("page00.png", "page01.png"):
        single = tmp_path / f"single-{name}"
        assert main([UPSCALE, str(src / name), str(single), *MODEL, "--quiet", *labels]) == 0
        assert (out / name).read_bytes() == single.read_bytes(), name
    assert ("parameters" in Image.open(out / "page00.png").info) == (not labels)


def test_dry_run_writes_nothing_and_changed_options_redo(tmp_path, capsys) -> None:
    src, out = _images(tmp_path / "in", 2), tmp_path / "out"
    args = ["batch", UPSCALE, str(src), str(out), *MODEL, "--quiet"]
    assert main([*args, "--dry-run"]) == 0
    assert not out.exists(), "a dry run writes nothing, not even the folder"
    assert "todo  page00.png -> page00.png" in capsys.readouterr().out
    assert main(args) == 0
    manifest = (out / MANIFEST_NAME).read_bytes()
    assert main([*args, "--dry-run"]) == 0
    assert "0 to do, 0 to redo, 2 already done" in capsys.readouterr().out
    assert main([*args, "--dry-run", "--scale", "3"]) == 0
    listing = capsys.readouterr().out
    assert "redo  page00.png" in listing and "\ntime: " in listing and "worker" in listing
    assert (out / MANIFEST_NAME).read_bytes() == manifest
    assert main([*args, "--scale", "3"]) == 0
    assert Image.open(out / "page00.png").size == (28 * 3, 24 * 3)
    assert len(_records(out)) == 4


def test_two_worker_processes_give_the_bytes_of_one(tmp_path) -> None:
    src = _images(tmp_path / "in", 4)
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["batch", UPSCALE, str(src), str(one), *MODEL, "--workers", "1", "--quiet"]) == 0
    assert main(["batch", UPSCALE, str(src), str(two), *MODEL, "--workers", "2", "--quiet"]) == 0
    assert _outputs(one) == _outputs(two) and len(_outputs(one)) == 4


def test_inpaint_takes_a_mask_per_image_by_name(tmp_path, capsys) -> None:
    src, masks, out = _images(tmp_path / "in", 2), tmp_path / "masks", tmp_path / "out"
    masks.mkdir()
    mask = np.zeros((24, 28), np.uint8)
    mask[8:14, 9:17] = 255
    Image.fromarray(mask).save(masks / "page00.png")
    inpaint = str(TaskKind.INPAINT)
    assert main(["batch", inpaint, str(src), str(out), "--masks", str(masks), "--quiet"]) == 1
    failed = {r["key"]: r["reason"] for r in _records(out) if not r["ok"]}
    assert list(failed) == ["page01.png"] and "no mask" in failed["page01.png"]
    single = tmp_path / "single.png"
    assert main([inpaint, str(src / "page00.png"), str(masks / "page00.png"), str(single)]) == 0
    assert (out / "page00.png").read_bytes() == single.read_bytes()
    capsys.readouterr()
    assert main(["batch", inpaint, str(src), str(out)]) == 1
    assert "--mask FILE" in capsys.readouterr().err


def test_ray_without_the_cluster_extra_says_how_to_get_it(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    src, out = _images(tmp_path / "in", 1), tmp_path / "out"
    assert main(["batch", UPSCALE, str(src), str(out), *MODEL, "--ray"]) == 1
    assert capsys.readouterr().err.strip() == (
        "studio: error: --ray needs Ray: pip install 'studio[cluster]' "
        "(or: pip install 'ray>=2.60,<2.61')"
    )
    assert not (out / MANIFEST_NAME).exists(), "the one error comes before anything is opened"


def test_a_prompt_batch_keys_each_line_on_its_own_text(tmp_path) -> None:
    """Editing one prompt redoes that prompt's files only: the shared options do not carry
    the first prompt (each item brings its own prompt and seed)."""
    from studio.batch_cli import _plan
    from studio.cli import _build_parser

    prompts = tmp_path / "prompts.txt"
    out = tmp_path / "out"

    def planned(text: str):
        prompts.write_text(text, encoding="utf-8")
        args = ["batch", str(TaskKind.GENERATE), str(out), "--prompts", str(prompts)]
        ns = _build_parser().parse_args([*args, "--count", "2", "--seed", "5", "--steps", "2"])
        items, spec, _workers, _note = _plan(ns.batch_def, ns)
        return items, spec

    items, spec = planned("a red apple\na blue car\n")
    edited, edited_spec = planned("a green apple\na blue car\n")
    assert edited_spec.options_hash == spec.options_hash
    assert edited[0].prompt == "a green apple" and edited[0].seed == items[0].seed
    assert spec.params.count == 1 and spec.params.steps == 2
    assert [(i.prompt, i.seed) for i in items] == [
        ("a red apple", 5),
        ("a red apple", 6),
        ("a blue car", 1005),
        ("a blue car", 1006),
    ]
    assert not out.exists()
