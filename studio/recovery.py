"""Autosave and crash recovery: open documents copied to a recovery folder as ``.ora`` files.

Each open document has a key. :meth:`RecoveryStore.autosave` writes ``<key>.ora`` (atomically,
and only when the document changed since the last autosave) plus ``<key>.json`` saying what the
document is, where its project or image lives and when it was saved. A recovery file stays until
the document is saved or the artist discards it (:meth:`RecoveryStore.discard`), so a crash,
``kill -9`` or a power cut leaves it for the next launch to offer (:meth:`RecoveryStore.entries`).

The editor never waits for an autosave: :meth:`RecoveryStore.snapshot` copies what must be saved
(on the GUI thread, cheaply: only the layers changed since the last autosave are copied, into
buffers kept from it) and :meth:`AutosaveJob.write` encodes and writes that copy on a worker
thread. A job that finishes after its document was saved or discarded removes what it wrote.
Qt-free: the editor calls it from a timer and on close.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.atomic_write import write_text_atomic
from studio.document import MASK, Document, Layer
from studio.document.document import DocumentInfo
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


@dataclass
class _Copy:
    """A copy of one live array (a layer's pixels or the mask) made at ``revision``."""

    source: np.ndarray
    copy: np.ndarray
    revision: int


@dataclass
class AutosaveJob:
    """One autosave: a copy of the document, independent of the live one, ready to write."""

    store: RecoveryStore
    key: str
    document: Document
    info: dict[str, Any]
    epoch: int
    #: whether ``document`` shares the store's kept copies (they stay untouched until written)
    reuses_copies: bool

    @property
    def revision(self) -> int:
        return int(self.info["revision"])

    def write(self) -> bool:
        """Encode and write the copy (any thread). Returns whether the recovery file stands:
        False when the document was saved or discarded meanwhile (what was written is removed).
        Raises OSError or StudioError when the write fails; the old recovery file is intact."""
        return self.store._write(self)


class RecoveryStore:
    """The recovery folder (default: ``recovery/`` in the user-data folder).

    :meth:`snapshot` and :meth:`discard` are called from one thread (the editor's GUI thread);
    :meth:`AutosaveJob.write` may run on another.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else recovery_dir()
        self._saved_revision: dict[str, int] = {}
        self._lock = threading.Lock()
        #: bumped by :meth:`discard`: a job of an older epoch must not leave its file behind
        self._epoch: dict[str, int] = {}
        #: per key: the copies of the last snapshot (layer id or MASK -> copy), reused while
        #: their array is unchanged and refilled in place (no new pages to fault in) otherwise
        self._copies: dict[str, dict[Any, _Copy]] = {}
        self._writing: set[str] = set()

    def autosave(
        self, doc: Document, key: str, *, title: str = "", source_path: str | None = None
    ) -> bool:
        """Copy ``doc`` to the recovery folder when it changed since its last autosave (and
        has changes its project file lacks), on this thread. Returns whether it was written."""
        job = self.snapshot(doc, key, title=title, source_path=source_path)
        return job is not None and job.write()

    def snapshot(
        self,
        doc: Document,
        key: str,
        *,
        title: str = "",
        source_path: str | None = None,
        spare: list[np.ndarray] | None = None,
    ) -> AutosaveJob | None:
        """What an autosave of ``doc`` must write, copied now (cheap: unchanged layers are not
        copied again), or None when nothing changed since the last autosave. ``spare``: buffers
        from :func:`make_buffers` for the arrays :meth:`copies_needed` named."""
        if not doc.is_modified or self._saved_revision.get(key) == doc.revision:
            return None
        _safe_key(key)
        with self._lock:
            # the kept copies may be refilled only when no job is still reading them
            reuse = key not in self._writing
            if reuse:
                self._writing.add(key)
            epoch = self._epoch.get(key, 0)
        try:
            return self._copy(doc, key, epoch, reuse, title, source_path, list(spare or ()))
        except BaseException:
            if reuse:
                with self._lock:
                    self._writing.discard(key)
            raise

    def copies_needed(self, doc: Document, key: str) -> list[tuple[tuple[int, ...], np.dtype]]:
        """Shapes and dtypes of the new memory the next :meth:`snapshot` of ``doc`` would need
        (arrays with no kept copy to refill). Faulting in fresh pages costs the GUI thread far
        more than the copy itself (a 4096x3072 layer: about 130 ms against 10), so the editor
        has :func:`make_buffers` make them on its worker first."""
        if not doc.is_modified or self._saved_revision.get(key) == doc.revision:
            return []
        with self._lock:
            reuse = key not in self._writing
        copies = self._copies.get(key, {}) if reuse else {}
        return [
            (live.shape, live.dtype)
            for target, live in _arrays(doc)
            if (old := copies.get(target)) is None or not _fits(old.copy, live)
        ]

    def _copy(
        self,
        doc: Document,
        key: str,
        epoch: int,
        reuse: bool,
        title: str,
        source_path: str | None,
        spare: list[np.ndarray],
    ) -> AutosaveJob:
        copies = self._copies.get(key, {}) if reuse else {}
        kept: dict[Any, _Copy] = {}

        def copied(target: Any, live: np.ndarray) -> np.ndarray:
            old = copies.get(target)
            same = old is not None and old.source is live
            if same and not doc.changed_since(target, old.revision):
                kept[target] = old
                return old.copy
            buffer = old.copy if old is not None and _fits(old.copy, live) else None
            if buffer is None:
                buffer = next((b for b in spare if _fits(b, live)), None)
                if buffer is not None:
                    spare.remove(buffer)
            if buffer is None:
                buffer = live.copy()
            else:
                np.copyto(buffer, live)
            kept[target] = _Copy(live, buffer, doc.revision)
            return buffer

        snap = Document(doc.width, doc.height)
        snap.layers = [
            Layer(
                copied(layer.id, layer.pixels),
                layer.name,
                layer.visible,
                layer.opacity,
                layer.id,
                copy.deepcopy(layer.provenance),
            )
            for layer in doc.layers
        ]
        snap.active_index = doc.active_index
        snap.mask = copied(MASK, doc.mask)
        snap.info = DocumentInfo(doc.info.path, dict(doc.info.metadata))
        if reuse:
            self._copies[key] = kept  # copies of layers gone from the document are let go
        info = {
            "title": title,
            "source_path": source_path,
            "saved_at": time.time(),
            "pid": os.getpid(),
            "revision": doc.revision,
        }
        return AutosaveJob(self, key, snap, info, epoch, reuse)

    def _write(self, job: AutosaveJob) -> bool:
        key = job.key
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            save_project(job.document, self._ora(key), compress_level=AUTOSAVE_COMPRESS_LEVEL)
            write_text_atomic(self._json(key), json.dumps(job.info, indent=1))
            with self._lock:
                if self._epoch.get(key, 0) != job.epoch:  # saved or discarded meanwhile
                    self._remove_files(key)
                    return False
                self._saved_revision[key] = job.revision
                return True
        finally:
            if job.reuses_copies:
                with self._lock:
                    self._writing.discard(key)

    def discard(self, key: str) -> None:
        """Remove a document's recovery files (after it was saved or the artist said so); an
        autosave of it still being written removes its file when it finishes."""
        with self._lock:
            self._epoch[key] = self._epoch.get(key, 0) + 1
            self._remove_files(key)
            self._saved_revision.pop(key, None)
        self._copies.pop(key, None)

    def _remove_files(self, key: str) -> None:
        for path in (self._ora(key), self._json(key)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

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


def make_buffers(needs: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
    """New arrays of these shapes and dtypes with their pages faulted in (any thread)."""
    buffers = []
    for shape, dtype in needs:
        buffer = np.empty(shape, dtype)
        buffer.fill(0)
        buffers.append(buffer)
    return buffers


def _arrays(doc: Document) -> list[tuple[Any, np.ndarray]]:
    """What a snapshot copies: each layer's pixels (by layer id) and the mask."""
    return [(layer.id, layer.pixels) for layer in doc.layers] + [(MASK, doc.mask)]


def _fits(buffer: np.ndarray, live: np.ndarray) -> bool:
    return buffer.shape == live.shape and buffer.dtype == live.dtype


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
