"""Simulated write failures for tests: a full disk or Ctrl-C part-way through a file."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FailingFile:
    """A file opened for writing whose ``write`` stores a few bytes, then raises ``exc``."""

    def __init__(self, real, exc: BaseException) -> None:
        self._real, self._exc = real, exc

    def write(self, data) -> int:
        self._real.write(bytes(memoryview(data)[:10]))
        self._real.flush()
        raise self._exc

    def fileno(self) -> int:  # keep Pillow's encoders on write() instead of the raw descriptor
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._real.close()


def fail_writes(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Every file opened for writing (``open``, ``Path.write_bytes``, ``os.fdopen``) fails
    part-way with ``exc``; files opened for reading are untouched."""
    real_open = io.open

    def opener(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return FailingFile(f, exc) if "w" in mode else f

    monkeypatch.setattr(io, "open", opener)


@contextlib.contextmanager
def unwritable_folder(parent: Path) -> Iterator[Path]:
    """A folder no file can be created in. Root ignores mode bits, so as root the folder is made
    immutable with ``chattr +i`` (which binds root too); skipped where that is refused."""
    folder = parent / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root without chattr +i: no way to make a folder read-only")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)
