"""Autosave and crash recovery: open documents copied to a recovery folder as ``.ora`` files.

Each open document has a key. :meth:`RecoveryStore.autosave` writes ``<key>.ora`` (atomically,
and only when the document changed since the last autosave) plus ``<key>.json`` saying what the
document is, where its project or image lives and when it was saved. A recovery file stays until
the document is saved or the artist discards it (:meth:`RecoveryStore.discard`), so a crash,
``kill -9`` or a power cut leaves it for the next launch to offer (:meth:`RecoveryStore.entries`).
Qt-free: the editor calls it from a timer and on close.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.atomic_write import write_text_atomic
from studio.document import Document
from studio.document.ora import OpenedProject, open_project, save_project
from studio.paths import user_data_dir

#: autosaves favour speed over size: they are rewritten every few minutes
AUTOSAVE_COMPRESS_LEVEL = 1
_THUMBNAIL_LIMIT = 1 << 20


def recovery_dir() -> Path:
    return user_data_dir() / "recovery"


def new_key() -> str:
    """A fresh key for a newly opened document."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RecoveryEntry:
    """One recoverable document: its autosave, what it was and when it was saved."""

    key: str
    path: Path
    title: str
    source_path: str | None
    saved_at: float
    pid: int | None

    def thumbnail_png(self) -> bytes | None:
        """The autosave's thumbnail (PNG bytes), or None when it cannot be read."""
        try:
            with zipfile.ZipFile(self.path) as zf:
                info = zf.getinfo("Thumbnails/thumbnail.png")
                if info.file_size > _THUMBNAIL_LIMIT:
                    return None
                with zf.open(info) as f:
                    return f.read(_THUMBNAIL_LIMIT)
        except (OSError, KeyError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError):
            return None

    @property
    def time_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))


class RecoveryStore:
    """The recovery folder (default: ``recovery/`` in the user-data folder)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else recovery_dir()
        self._saved_revision: dict[str, int] = {}

    def autosave(
        self, doc: Document, key: str, *, title: str = "", source_path: str | None = None
    ) -> bool:
        """Copy ``doc`` to the recovery folder when it changed since its last autosave (and
        has changes its project file lacks). Returns whether a file was written."""
        if not doc.is_modified or self._saved_revision.get(key) == doc.revision:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        save_project(doc, self._ora(key), compress_level=AUTOSAVE_COMPRESS_LEVEL)
        info = {
            "title": title,
            "source_path": source_path,
            "saved_at": time.time(),
            "pid": os.getpid(),
            "revision": doc.revision,
        }
        write_text_atomic(self._json(key), json.dumps(info, indent=1))
        self._saved_revision[key] = doc.revision
        return True

    def discard(self, key: str) -> None:
        """Remove a document's recovery files (after it was saved or the artist said so)."""
        for path in (self._ora(key), self._json(key)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._saved_revision.pop(key, None)

    def forget_revision(self, key: str) -> None:
        """After the document was saved: its next change autosaves again."""
        self._saved_revision.pop(key, None)

    def entries(self, *, include_running: bool = False) -> list[RecoveryEntry]:
        """Recoverable documents, newest first. Autosaves of another Studio that is still
        running are left out unless ``include_running``; so are this process's own."""
        if not self.folder.is_dir():
            return []
        out = []
        for ora in self.folder.glob("*.ora"):
            if ora.name.startswith("."):  # a temporary file of an interrupted write
                continue
            key = ora.stem
            info = self._read_info(key)
            pid = info.get("pid") if isinstance(info.get("pid"), int) else None
            if not include_running and pid is not None and _is_running(pid):
                continue
            saved_at = info.get("saved_at")
            if not isinstance(saved_at, int | float):
                saved_at = ora.stat().st_mtime
            source = info.get("source_path")
            title = info.get("title") or (Path(source).name if source else "Untitled")
            out.append(
                RecoveryEntry(
                    key,
                    ora,
                    str(title),
                    str(source) if isinstance(source, str) else None,
                    float(saved_at),
                    pid,
                )
            )
        return sorted(out, key=lambda e: e.saved_at, reverse=True)

    def restore(self, entry: RecoveryEntry) -> OpenedProject:
        """The autosaved document, marked modified (its project file does not have it yet) and
        pointing at its original project or image. Raises BadInputError if it is damaged."""
        opened = open_project(entry.path)
        doc = opened.document
        doc.info.path = entry.source_path
        doc.mark_unsaved()
        return opened

    def _read_info(self, key: str) -> dict[str, Any]:
        try:
            path = self._json(key)
            if path.stat().st_size > 1 << 16:
                return {}
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _ora(self, key: str) -> Path:
        return self.folder / f"{_safe_key(key)}.ora"

    def _json(self, key: str) -> Path:
        return self.folder / f"{_safe_key(key)}.json"


def _safe_key(key: str) -> str:
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ValueError(f"not a recovery key: {key!r}")
    return key


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
