"""The command line and the disk: a bad destination fails before any work, an OSError while
reading or writing is one line, and SIGTERM/Ctrl-C mid-save leave no temporary file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from disk_faults import disk_full, fail_writes, unwritable_folder
from PIL import Image

import studio.cli
import studio.imageio
import studio.models.ncnn
from studio.cli import main

REPO = Path(__file__).resolve().parents[2]
INPUTS = ["in.png", "m.bin", "m.param", "mask.png"]


@pytest.fixture
def inputs(tmp_path: Path, photo) -> dict[str, Path]:
    Image.fromarray(photo).save(tmp_path / "in.png")
    Image.fromarray(np.full(photo.shape[:2], 255, np.uint8)).save(tmp_path / "mask.png")
    (tmp_path / "m.param").write_text("7767517\n")
    (tmp_path / "m.bin").write_bytes(b"\0" * 8)
    return {"in": tmp_path / "in.png", "mask": tmp_path / "mask.png"}


def _commands(tmp_path: Path, out: Path) -> dict[str, list[str]]:
    """One invocation per command, all writing ``out`` (a .safetensors name for the importer)."""
    image, mask = str(tmp_path / "in.png"), str(tmp_path / "mask.png")
    weights = str(out.with_name(out.stem + ".safetensors"))
    return {
        "upscale": ["upscale", image, str(out), "--model", "lanczos"],
        "inpaint": ["inpaint", image, mask, str(out), "--method", "telea"],
        "outpaint": ["outpaint", image, str(out), "--method", "patchmatch", "--right", "8"],
        "stylize": ["stylize", image, str(out), "--style", "copper"],
        "generate": ["generate", str(out), "--model", "studio-emoji-gan"],
        "import-ncnn": [
            "models",
            "import-ncnn",
            str(tmp_path / "m.param"),
            str(tmp_path / "m.bin"),
            weights,
        ],
    }


@pytest.fixture
def no_work(monkeypatch) -> None:
    """Reading an input, running a model or parsing an ncnn file fails the test: the destination
    must be refused before any of them."""

    def too_early(*_args, **_kwargs):
        raise AssertionError("work started before the destination was checked")

    monkeypatch.setattr(studio.imageio, "read_image", too_early)
    monkeypatch.setattr(studio.cli, "_run_headless", too_early)
    monkeypatch.setattr(studio.models.ncnn, "read_ncnn", too_early)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("studio: error: "), err
    return err


@pytest.mark.parametrize("command", list(_commands(Path("t"), Path("o.png"))))
def test_a_folder_as_output_is_refused_before_any_work(
    tmp_path: Path, inputs, no_work, capsys, command: str
) -> None:
    out = tmp_path / "out.png"
    out.mkdir()
    (tmp_path / "out.safetensors").mkdir()
    assert main(_commands(tmp_path, out)[command]) == 1
    assert "is a folder" in _one_error_line(capsys)


@pytest.mark.parametrize("command", list(_commands(Path("t"), Path("o.png"))))
def test_a_missing_output_folder_is_refused_before_any_work(
    tmp_path: Path, inputs, no_work, capsys, command: str
) -> None:
    assert main(_commands(tmp_path, tmp_path / "nowhere" / "out.png")[command]) == 1
    assert "nowhere: no such folder" in _one_error_line(capsys)
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture
def locked(tmp_path: Path):
    with unwritable_folder(tmp_path) as folder:
        yield folder


@pytest.mark.parametrize("command", ["upscale", "generate", "import-ncnn"])
def test_an_unwritable_output_folder_is_refused_before_any_work(
    tmp_path: Path, inputs, no_work, locked: Path, capsys, command: str
) -> None:
    assert main(_commands(tmp_path, locked / "out.png")[command]) == 1
    assert "cannot write in this folder" in _one_error_line(capsys)


def test_a_full_disk_is_one_line_and_the_old_output_survives(
    tmp_path: Path, inputs, monkeypatch, capsys
) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous result")
    fail_writes(monkeypatch, disk_full())
    rc = main(_commands(tmp_path, out)["upscale"] + ["--quiet"])
    monkeypatch.undo()
    assert rc == 1
    assert _one_error_line(capsys) == f"studio: error: {out}: No space left on device"
    assert out.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == [*INPUTS, "out.png"]


def test_an_os_error_while_reading_is_one_line(tmp_path: Path, inputs, monkeypatch, capsys):
    def denied(path, *_args, **_kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(studio.imageio, "read_image", denied)
    assert main(_commands(tmp_path, tmp_path / "out.png")["upscale"]) == 1
    assert _one_error_line(capsys) == f"studio: error: {inputs['in']}: Permission denied"


def test_a_closed_stdout_is_still_not_an_error(monkeypatch) -> None:
    def gone(*_args, **_kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(studio.cli, "_models_list", gone)
    assert main(["models", "list"]) == 0


_BLOCK_IN_FSYNC = """
    import os, sys, time
    import studio.atomic_write
    def slow_fsync(fd):
        print("saving", flush=True)
        time.sleep(60)
    studio.atomic_write.os = type(sys)("os_with_slow_fsync")
    studio.atomic_write.os.__dict__.update(os.__dict__, fsync=slow_fsync)
    from studio.cli import main
    sys.exit(main(sys.argv[1:]))
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_in_the_middle_of_a_save_leaves_no_temp_file(
    tmp_path: Path, inputs, signum: int, status: int
) -> None:
    """The save is held inside fsync (the temporary file complete on disk) when the signal
    comes; the process must unwind, delete it, keep the old output and say so in one line."""
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous result")
    argv = _commands(tmp_path, out)["upscale"] + ["--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_BLOCK_IN_FSYNC), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "STUDIO_DEVICE": "cpu"},
        # a suite started in the background (`cmd &` in a script) ignores SIGINT, and the child
        # would inherit that; an artist's terminal delivers it
        preexec_fn=_default_sigint,
    )
    try:
        assert proc.stdout.readline().strip() == "saving", proc.communicate(timeout=60)
        assert any(p.name.startswith(".out.png.") for p in tmp_path.iterdir())
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert err.strip() == "studio: cancelled"
    assert out.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == [*INPUTS, "out.png"]
