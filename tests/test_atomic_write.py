"""Atomic writes: no planted symlink is followed, no temporary file survives a failure, the old
file survives every failed write, modes are those of a normal file, bad destinations fail early."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from disk_faults import disk_full, fail_writes, unwritable_folder

import studio.atomic_write as atomic_write
from studio.atomic_write import atomic_open, check_destination, write_bytes_atomic
from studio.errors import BadInputError
from studio.imageio import check_writable, read_image, write_image
from studio.settings import Settings


def _leftovers(folder: Path) -> list[str]:
    """Hidden or temporary files a writer may have left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file a planted symlink points at (root-owned in the real attack); it must not change."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    path = folder / "passwd"
    path.write_bytes(b"precious\n")
    return path


def test_a_symlink_at_the_old_predictable_temp_name_is_not_followed(
    tmp_path: Path, victim: Path, photo
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / ".out.png.tmp").symlink_to(victim)  # the name the old writer always used
    write_image(shared / "out.png", photo)
    assert victim.read_bytes() == b"precious\n"
    np.testing.assert_array_equal(read_image(shared / "out.png").pixels, photo)
    assert (shared / ".out.png.tmp").is_symlink(), "someone else's link is left alone"


def test_a_symlink_at_a_guessed_temp_name_is_skipped(
    tmp_path: Path, victim: Path, monkeypatch
) -> None:
    """Even an attacker who guesses the random name cannot redirect the write (O_EXCL)."""
    names = iter(["guessed", "fresh"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    planted = tmp_path / ".out.bin.guessed.tmp"
    planted.symlink_to(victim)
    write_bytes_atomic(tmp_path / "out.bin", b"new")
    assert victim.read_bytes() == b"precious\n"
    assert (tmp_path / "out.bin").read_bytes() == b"new"
    assert planted.is_symlink() and not (tmp_path / ".out.bin.fresh.tmp").exists()


def test_settings_do_not_follow_a_symlink_at_their_old_temp_name(
    tmp_path: Path, victim: Path
) -> None:
    path = tmp_path / "settings.json"
    (tmp_path / "settings.tmp").symlink_to(victim)  # the old Settings.save temp name
    assert Settings().save(path)
    assert victim.read_bytes() == b"precious\n"
    assert Settings.load(path) == Settings()


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_leaves_no_temp_file_and_keeps_the_old_image(
    tmp_path: Path, photo, monkeypatch
) -> None:
    target = tmp_path / "x.png"
    write_image(target, photo)
    before = target.read_bytes()
    fail_writes(monkeypatch, disk_full())
    with pytest.raises(OSError, match="No space left") as info:
        write_image(target, photo[::-1])
    monkeypatch.undo()
    assert info.value.filename == str(target), "the error names the file for the message"
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_a_failing_fsync_leaves_no_temp_file(tmp_path: Path, photo, monkeypatch) -> None:
    monkeypatch.setattr(atomic_write.os, "fsync", _enospc)
    with pytest.raises(OSError, match="No space left"):
        write_image(tmp_path / "x.png", photo)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_saving_settings_returns_false_and_leaves_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    fail_writes(monkeypatch, disk_full())
    assert Settings().save(tmp_path / "settings.json") is False
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_in_the_middle_of_a_write_leaves_no_temp_file(
    tmp_path: Path, photo, monkeypatch
) -> None:
    target = tmp_path / "big.png"
    target.write_bytes(b"old")
    fail_writes(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_image(target, photo)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_ctrl_c_inside_atomic_open_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as f:
        f.write(b"\0" * (1 << 20))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_modes_are_those_of_a_normal_file_or_the_replaced_one(tmp_path: Path) -> None:
    old_umask = os.umask(0o027)
    try:
        write_bytes_atomic(tmp_path / "new.bin", b"x")
        assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o640, "0o666 less the umask"
        (tmp_path / "kept.bin").write_bytes(b"old")
        (tmp_path / "kept.bin").chmod(0o604)
        write_bytes_atomic(tmp_path / "kept.bin", b"new")
        assert (tmp_path / "kept.bin").stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(old_umask)


def test_a_folder_as_target_or_a_missing_folder_fails_before_writing(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    with pytest.raises(BadInputError, match="is a folder"):
        check_writable(tmp_path / "out.png")
    with pytest.raises(BadInputError, match="no such folder"):
        check_writable(tmp_path / "missing" / "out.png")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BadInputError, match="is not a folder"):
        check_destination(tmp_path / "file" / "out.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out.png"]


def test_an_unwritable_folder_fails_before_writing(read_only_folder: Path) -> None:
    with pytest.raises(BadInputError, match="cannot write in this folder"):
        check_writable(read_only_folder / "out.png")


@pytest.fixture
def read_only_folder(tmp_path: Path):
    with unwritable_folder(tmp_path) as folder:
        yield folder


KILLED_WRITER = """
import sys
from studio.atomic_write import atomic_open
writing = atomic_open(sys.argv[1])
f = writing.__enter__()
f.write(b"half a file")
f.flush()
print("writing", flush=True)
sys.stdin.read()  # until killed
"""


def test_a_temp_file_left_by_a_killed_save_goes_at_the_next_save_once_stale(
    tmp_path: Path,
) -> None:
    target = tmp_path / "work.ora"
    target.write_bytes(b"old project")
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    [left] = [p for p in tmp_path.iterdir() if p.name.startswith(".work.ora.")]
    assert target.read_bytes() == b"old project"
    write_bytes_atomic(target, b"saved at once")
    assert left.exists(), "a fresh temp file may be another process's live one: kept"
    old = time.time() - atomic_write.STALE_TEMP_SECONDS - 60
    os.utime(left, (old, old))
    write_bytes_atomic(target, b"saved later")
    assert not left.exists(), "the stale one went with the next save of the same target"
    assert target.read_bytes() == b"saved later"
    assert _leftovers(tmp_path) == []


def test_stale_temp_cleanup_touches_only_this_targets_own_old_temp_files(
    tmp_path: Path, victim: Path
) -> None:
    old = time.time() - atomic_write.STALE_TEMP_SECONDS - 60
    stale = tmp_path / ".out.png.a1b2c3d4.tmp"
    kept = {
        tmp_path / ".out.png.e5f6g7h8.tmp": "fresh: maybe a live writer",
        tmp_path / ".other.png.a1b2c3d4.tmp": "another target's",
        tmp_path / ".out.png.backup.tmp": "not a name the writer makes",
        tmp_path / "out.png.a1b2c3d4.tmp": "not hidden: not ours",
    }
    for path in [stale, *kept]:
        path.write_bytes(b"x")
        if "fresh" not in kept.get(path, ""):
            os.utime(path, (old, old))
    link = tmp_path / ".out.png.zzzzzzzz.tmp"
    link.symlink_to(victim)
    os.utime(link, (old, old), follow_symlinks=False)
    assert atomic_write.remove_stale_temps(tmp_path / "out.png") == [stale]
    assert all(path.exists() for path in kept), kept
    assert link.is_symlink() and victim.read_bytes() == b"precious\n"
