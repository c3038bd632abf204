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


# -- snapshot now, write on another thread ---------------------------------------------------------


def _paint(doc: Document, index: int, value: int) -> None:
    layer = doc.layers[index]
    doc.apply_pixels(layer.id, Rect(1, 1, 6, 6), np.full((6, 6, 4), value, np.uint8), "Paint")


def _restored(folder: Path, key: str) -> Document:
    _pretend_dead(folder, key)
    [entry] = RecoveryStore(folder).entries()
    return RecoveryStore(folder).restore(entry).document


def test_a_snapshot_keeps_the_state_it_was_taken_in(tmp_path: Path) -> None:
    """Edits made while the worker writes go into the next autosave, not this one."""
    doc, store, key = edited_document(), RecoveryStore(tmp_path), new_key()
    job = store.snapshot(doc, key)
    assert job is not None
    before = [layer.pixels.copy() for layer in doc.layers]
    _paint(doc, 1, 200)
    doc.mask[:] = 0.5  # even a write behind the document's back does not reach the copy
    assert job.write()
    for want, got in zip(before, _restored(tmp_path, key).layers, strict=True):
        np.testing.assert_array_equal(got.pixels, want)
    again = RecoveryStore(tmp_path)
    assert again.autosave(doc, key), "the edit made meanwhile is a new change"
    restored = _restored(tmp_path, key)
    np.testing.assert_array_equal(restored.layers[1].pixels, doc.layers[1].pixels)


def test_unchanged_layers_are_not_copied_again_and_changed_ones_refill_their_copy(
    tmp_path: Path,
) -> None:
    doc, store, key = edited_document(), RecoveryStore(tmp_path), new_key()
    first = store.snapshot(doc, key)
    assert first is not None and first.write()
    _paint(doc, 1, 150)
    second = store.snapshot(doc, key)
    assert second is not None
    old, new = first.document, second.document
    assert new.layers[0].pixels is old.layers[0].pixels, "untouched: its copy is reused"
    assert new.mask is old.mask
    assert new.layers[1].pixels is old.layers[1].pixels, "painted: refilled in place"
    np.testing.assert_array_equal(new.layers[1].pixels, doc.layers[1].pixels)
    assert new.layers[1].pixels is not doc.layers[1].pixels
    assert second.write()
    assert store.copies_needed(doc, key) == [], "nothing to autosave"
    _paint(doc, 0, 9)
    assert store.copies_needed(doc, key) == [], "a changed layer refills its copy"
    doc.add_layer(Layer.blank(60, 40, "New"))
    assert store.copies_needed(doc, key) == [((40, 60, 4), np.dtype(np.uint8))]


def test_buffers_made_beforehand_take_the_copies(tmp_path: Path) -> None:
    from studio.recovery import make_buffers

    doc, store, key = edited_document(), RecoveryStore(tmp_path), new_key()
    needs = store.copies_needed(doc, key)
    assert needs == [((40, 60, 4), np.uint8)] * 2 + [((40, 60), np.float32)]
    spare = make_buffers(needs)
    job = store.snapshot(doc, key, spare=spare)
    assert job is not None
    taken = [job.document.layers[0].pixels, job.document.layers[1].pixels, job.document.mask]
    assert all(any(t is s for s in spare) for t in taken)
    np.testing.assert_array_equal(taken[1], doc.layers[1].pixels)


def test_a_second_snapshot_while_the_first_is_unwritten_copies_afresh(tmp_path: Path) -> None:
    """The kept copies are refilled only when no job reads them (closing after a timeout)."""
    doc, store, key = edited_document(), RecoveryStore(tmp_path), new_key()
    first = store.snapshot(doc, key)
    assert first is not None
    state = first.document.layers[1].pixels.copy()
    _paint(doc, 1, 33)
    second = store.snapshot(doc, key)
    assert second is not None and second.document.layers[1].pixels is not state
    np.testing.assert_array_equal(first.document.layers[1].pixels, state)
    assert first.write() and second.write()
    np.testing.assert_array_equal(_restored(tmp_path, key).layers[1].pixels, doc.layers[1].pixels)


def test_a_write_that_finishes_after_discard_leaves_nothing(tmp_path: Path) -> None:
    """Saving the document (which discards its recovery file) while an autosave is being
    written: the late write removes what it wrote."""
    doc, store, key = edited_document(), RecoveryStore(tmp_path), new_key()
    job = store.snapshot(doc, key)
    assert job is not None
    store.discard(key)
    assert not job.write()
    assert list(tmp_path.iterdir()) == []
    assert store.autosave(doc, key), "the document still has unsaved changes: next one writes"
