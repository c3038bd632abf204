"""Writing a file so that a failure never loses the old one, leaves debris, or follows a link.

Every writer in Studio goes through :func:`atomic_open` (or :func:`write_bytes_atomic`):

* the data goes to a fresh temporary file beside the target, made by :func:`tempfile.mkstemp`
  (``O_CREAT | O_EXCL | O_NOFOLLOW``, an unpredictable name): a symlink planted in a shared
  folder is never followed and no other file is ever truncated;
* the temporary file is flushed, ``fsync``ed and renamed over the target with :func:`os.replace`,
  then the folder is ``fsync``ed, so after a crash the target is either the old or the new file;
* on any failure, including ``KeyboardInterrupt`` (the CLI turns SIGTERM into one), the
  temporary file is removed; one a killed process (SIGKILL, power cut) left behind is removed
  by the next write of the same target once it is :data:`STALE_TEMP_SECONDS` old
  (:func:`remove_stale_temps`);
* the new file gets the mode an ordinary ``open(path, "w")`` would give it (``0o666`` less the
  umask), or the old file's mode when it replaces one; ``mkstemp`` alone would make it 0600.

Qt-free and torch-free: the settings, the image writer, the ncnn importer and training use it.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from studio.errors import BadInputError

TEMP_SUFFIX = ".tmp"
#: a temporary file untouched this long belongs to a writer that died: every write of a live one
#: advances its mtime, and the slowest save (a 16k project) finishes well within it
STALE_TEMP_SECONDS = 5 * 60
#: the random part :func:`tempfile.mkstemp` puts in a name
_RANDOM_PART = "[a-z0-9_]{8}"


def temp_prefix(target: Path) -> str:
    """Temporary files for ``target`` are named ``.<name>.<random>.tmp`` in its folder."""
    return f".{target.name}."


def check_destination(path: str | os.PathLike[str]) -> Path:
    """Raise :class:`BadInputError` unless ``path`` can be written; call it before any work.

    The folder must exist and accept a new file (tested by creating and removing one, which also
    catches read-only mounts and root on a folder marked immutable), ``path`` must not be a
    folder, and an existing file must not be read-only.
    """
    p = Path(path)
    folder = p.parent
    if p.is_dir():
        raise BadInputError(f"{p}: is a folder; give a file name to write")
    if not folder.exists():
        raise BadInputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise BadInputError(f"{folder}: is not a folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise BadInputError(f"{p}: the file is read-only")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=temp_prefix(p), suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise BadInputError(f"{folder}: cannot write in this folder ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return p


def remove_stale_temps(
    target: str | os.PathLike[str], *, older_than: float = STALE_TEMP_SECONDS
) -> list[Path]:
    """Remove the temporary files of ``target`` that a killed writer left beside it.

    Only regular files (never a link) named exactly as :func:`atomic_open` names them, owned by
    this user and unmodified for ``older_than`` seconds: another process's live temporary file
    is fresh. Best effort (a folder that cannot be listed is left alone); returns what went.
    """
    target = Path(target)
    pattern = re.compile(re.escape(temp_prefix(target)) + _RANDOM_PART + re.escape(TEMP_SUFFIX))
    cutoff = time.time() - older_than
    removed = []
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if (
                    stat.S_ISREG(info.st_mode)
                    and info.st_mtime < cutoff
                    and (not hasattr(os, "getuid") or info.st_uid == os.getuid())
                ):
                    os.unlink(entry.path)  # unlink never follows a link swapped in meanwhile
                    removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` on success only."""
    target = Path(path)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(target), suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), _mode_for(target))
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(target)  # a failed write() names no file; the artist needs one
        raise
    _fsync_folder(target.parent)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    with atomic_open(path) as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically."""
    write_bytes_atomic(path, text.encode(encoding))


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # /proc tells the umask without changing it; os.umask can only read it by setting it, which
    # would race with other threads creating files.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows has no directory handles to sync)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
