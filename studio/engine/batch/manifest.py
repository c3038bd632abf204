"""The batch manifest: ``OUT_DIR/.studio-batch.jsonl``, one JSON line per finished item.

Only the parent process writes it, one line per outcome, appended, flushed and ``fsync``ed
before the next item is counted, so a run killed at any moment leaves every line before the
last complete (a torn last line is ignored on reading). A record holds the item's key, the
sha256 of its input (and mask, or of its prompt and seed), the options hash, the output file
and its sha256, ok or the one-line reason, and the seconds it took. The newest record of a key
wins.

Resuming skips an item only when its newest record is ``ok``, names the same input hash and
options hash, and the output file still exists with the recorded hash; anything else is done
again: a failed item is retried (the reason may have been fixed), a changed input or changed
options redo the file, a deleted or edited output is written again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.atomic_write import remove_stale_temps
from studio.engine.batch.contract import BatchItem, BatchSpec, ItemOutcome
from studio.errors import BadInputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one batch per folder is then up to the user
    fcntl = None

MANIFEST_NAME = ".studio-batch.jsonl"
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def item_input_sha256(item: BatchItem) -> str:
    """What an item's output is made from: its input file's bytes and its mask file's (for a
    prompt: the prompt and the seed). Raises OSError when a file cannot be read."""
    digest = hashlib.sha256()
    if item.source is None:
        digest.update(json.dumps([item.prompt, item.seed]).encode())
        return digest.hexdigest()
    digest.update(file_sha256(item.source).encode())
    if item.mask is not None:
        digest.update(b"mask:" + file_sha256(item.mask).encode())
    return digest.hexdigest()


def options_hash(task: str, params: Any, extra: dict[str, Any] | None = None) -> str:
    """A stable hash of a task's params (arrays by their bytes) and ``extra`` settings."""
    plain = {"task": str(task), "params": _plain(params), "extra": _plain(extra or {})}
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__class__": type(value).__name__, **fields}
    if isinstance(value, np.ndarray):
        data = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return {"array": [list(value.shape), str(value.dtype), data]}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class Classified:
    """A plan split by the manifest: ``todo`` never recorded, ``redo`` recorded but failed,
    changed or with its output missing, ``done`` recorded and intact (skipped)."""

    todo: list[BatchItem]
    redo: list[BatchItem]
    done: list[BatchItem]
    #: todo and redo together, in plan order: what a run processes
    to_run: list[BatchItem]


class Manifest:
    """Reading and appending ``OUT_DIR/.studio-batch.jsonl``."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST_NAME
        self._file = None

    def records(self) -> dict[str, dict[str, Any]]:
        """The newest record of each key; lines that do not parse (a torn last line) skipped."""
        found: dict[str, dict[str, Any]] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return found
        for line in data.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                found[record["key"]] = record
        return found

    def classify(self, spec: BatchSpec, items: Iterable[BatchItem]) -> Classified:
        """Split ``items`` into to do, to redo and done (see the module docstring)."""
        records = self.records()
        todo, redo, done, to_run = [], [], [], []
        for item in items:
            record = records.get(item.key)
            if record is not None and self._intact(record, spec, item):
                done.append(item)
                continue
            (todo if record is None else redo).append(item)
            to_run.append(item)
        return Classified(todo, redo, done, to_run)

    def _intact(self, record: dict[str, Any], spec: BatchSpec, item: BatchItem) -> bool:
        if not record.get("ok") or record.get("options_hash") != spec.options_hash:
            return False
        if record.get("output") != item.output:
            return False
        output = self.out_dir / item.output
        try:
            return (
                record.get("input_sha256") == item_input_sha256(item)
                and output.is_file()
                and record.get("output_sha256") == file_sha256(output)
            )
        except OSError:
            return False  # an unreadable input: run it again, and record why it fails

    def open(self) -> None:
        """Open for appending, holding an exclusive lock for the run: a second batch writing
        to the same OUT_DIR is refused instead of interleaving its records and files."""
        if self._file is not None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the whole run
        if fcntl is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.close()
                raise BadInputError(
                    f"{self.out_dir}: another batch is writing to this folder"
                ) from None
        if self._file.tell() > 0 and not self._ends_with_newline():
            self._file.write(b"\n")  # a torn line from a killed run stays alone on its line

    def remove_stale_temps(self, items: Iterable[BatchItem]) -> None:
        """Remove the temporary files a killed run left beside these items' outputs (safe
        while :meth:`open` holds the lock: no other batch writes here)."""
        for item in items:
            remove_stale_temps(self.out_dir / item.output, older_than=0)

    def append(self, outcome: ItemOutcome, options_hash: str) -> None:
        """Record one finished item durably (appended, flushed and fsynced)."""
        self.open()
        assert self._file is not None
        record = {
            "key": outcome.key,
            "ok": outcome.ok,
            "input_sha256": outcome.input_sha256,
            "options_hash": options_hash,
            "output": outcome.output,
            "output_sha256": outcome.output_sha256,
            "reason": outcome.reason,
            "seconds": round(outcome.seconds, 4),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self._file.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def mean_seconds(self, spec: BatchSpec) -> float | None:
        """Mean seconds per item of the finished records with these options (for estimates)."""
        times = [
            float(r["seconds"])
            for r in self.records().values()
            if r.get("ok") and r.get("options_hash") == spec.options_hash and r.get("seconds")
        ]
        return sum(times) / len(times) if times else None
