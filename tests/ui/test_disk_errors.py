"""The editor and the disk: a failed open or export is one message box; the old file and the
document survive it, and no temporary file is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from disk_faults import disk_full, fail_writes
from PIL import Image

import studio.ui.main_window
from studio.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, engine, studio_home) -> MainWindow:
    w = MainWindow(engine)
    w.ask_save_changes = lambda: "discard"  # teardown closes the window without a dialog
    qtbot.addWidget(w)
    return w


@pytest.fixture
def opened(window: MainWindow, tmp_path: Path, photo) -> MainWindow:
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert window.open_path(tmp_path / "photo.png")
    window.document.fill_mask(1.0, "Select all")  # an unsaved change
    return window


def test_a_full_disk_on_export_is_a_message_and_keeps_the_old_file(
    opened: MainWindow, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"yesterday's export")
    fail_writes(monkeypatch, disk_full())
    assert opened.export_path(out) is False
    monkeypatch.undo()
    assert opened.last_error == f"{out}: No space left on device"
    assert out.read_bytes() == b"yesterday's export"
    assert opened.document.is_modified, "a failed export does not mark the document saved"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary file"


def test_exporting_onto_a_folder_is_a_message(opened: MainWindow, tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    assert opened.export_path(tmp_path / "out.png") is False
    assert "is a folder" in opened.last_error


def test_a_full_disk_on_mask_export_is_a_message(
    opened: MainWindow, tmp_path: Path, monkeypatch
) -> None:
    fail_writes(monkeypatch, disk_full())
    assert opened.export_mask_path(tmp_path / "mask.png") is False
    monkeypatch.undo()
    assert opened.last_error == f"{tmp_path / 'mask.png'}: No space left on device"
    assert not (tmp_path / "mask.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_os_error_while_opening_is_a_message(
    window: MainWindow, tmp_path: Path, monkeypatch
) -> None:
    def denied(path, *_args, **_kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(studio.ui.main_window, "read_image", denied)
    assert window.open_path(tmp_path / "secret.png") is False
    assert window.last_error == f"{tmp_path / 'secret.png'}: Permission denied"
    assert window.document is None
