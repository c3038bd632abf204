"""The recovery store: autosave only when changed, list with thumbnail and time, restore exactly,
remove only on save or discard."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from studio.document import Document, Layer
from studio.geometry import Rect
from studio.recovery import RecoveryStore, new_key


def edited_document() -> Document:
    doc = Document.from_image(np.full((40, 60, 3), 200, np.uint8), "Photo")
    doc.mark_clean()
    layer = doc.add_layer(Layer.blank(60, 40, "Ink"))
    doc.apply_pixels(layer.id, Rect(5, 5, 10, 10), np.full((10, 10, 4), 77, np.uint8), "Paint")
    return doc


def test_autosave_writes_only_when_changed(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path)
    doc = Document.from_image(np.zeros((8, 8, 3), np.uint8))
    doc.mark_clean()
    key = new_key()
    assert not store.autosave(doc, key)  # nothing to lose yet
    assert list(tmp_path.iterdir()) == []
    doc.add_layer(Layer.blank(8, 8, "New"))
    assert store.autosave(doc, key, title="pic.png")
    mtime = (tmp_path / f"{key}.ora").stat().st_mtime_ns
    assert not store.autosave(doc, key)  # unchanged since
    assert (tmp_path / f"{key}.ora").stat().st_mtime_ns == mtime
    doc.undo()
    assert not store.autosave(doc, key)  # back at the saved state: nothing to recover


def test_entries_from_a_dead_session_restore_exactly(tmp_path: Path) -> None:
    doc = edited_document()
    doc.mask[1:4, 1:4] = 0.25
    key = new_key()
    store = RecoveryStore(tmp_path)
    store.autosave(doc, key, title="Photo", source_path="/pictures/photo.ora")
    # this process is alive: its own autosaves are not offered to itself
    assert store.entries() == []
    _pretend_dead(tmp_path, key)
    [entry] = RecoveryStore(tmp_path).entries()
    assert entry.title == "Photo" and entry.source_path == "/pictures/photo.ora"
    assert entry.time_text[:2] == "20"
    thumb = Image.open(io.BytesIO(entry.thumbnail_png() or b""))
    assert thumb.format == "PNG" and max(thumb.size) <= 256
    restored = RecoveryStore(tmp_path).restore(entry).document
    assert [layer.name for layer in restored.layers] == ["Photo", "Ink"]
    for a, b in zip(doc.layers, restored.layers, strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)
    np.testing.assert_array_equal(restored.mask, doc.mask)
    assert restored.is_modified  # the project file does not have this work yet
    assert restored.info.path == "/pictures/photo.ora"


def test_recovery_file_stays_until_saved_or_discarded(tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path)
    key = new_key()
    store.autosave(edited_document(), key)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".ora"]
    store.discard(key)
    assert list(tmp_path.iterdir()) == []


def _pretend_dead(folder: Path, key: str) -> None:
    """Rewrite the sidecar's pid with that of a process that has ended."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    sidecar = folder / f"{key}.json"
    text = sidecar.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {pid}')
    sidecar.write_text(text)
