"""The File menu as artists expect: New, Save / Save As to OpenRaster, Open (projects too),
Open Recent, Export that never proposes the source's name and asks before replacing, labels,
paste and copy, and autosave to the recovery folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from studio.document import Layer
from studio.geometry import Rect
from studio.ui.qimage import numpy_to_qimage, qimage_to_numpy


def _paint_two_layers(win) -> None:
    doc = win.document
    base = doc.layers[0]
    doc.apply_pixels(base.id, Rect(4, 4, 10, 6), np.full((6, 10, 4), 200, np.uint8), "Paint")
    ink = doc.add_layer(Layer.blank(doc.width, doc.height, "Ink"))
    doc.apply_pixels(ink.id, Rect(20, 30, 8, 8), np.full((8, 8, 4), 90, np.uint8), "Ink")
    doc.set_layer_props(ink.id, "Fade", opacity=0.5)


def test_save_then_open_gives_back_the_layers_and_a_clean_title(win, tmp_path: Path) -> None:
    _paint_two_layers(win)
    assert win.windowTitle().startswith("*")
    path = tmp_path / "work.ora"
    assert win.save_project_path(path)
    assert not win.windowTitle().startswith("*") and "work.ora" in win.windowTitle()
    layers = [(x.name, x.opacity, x.pixels.copy()) for x in win.document.layers]
    assert win.open_path(path)
    back = win.document
    assert [(x.name, x.opacity) for x in back.layers] == [(n, o) for n, o, _ in layers]
    for (_, _, pixels), layer in zip(layers, back.layers, strict=True):
        np.testing.assert_array_equal(layer.pixels, pixels)
    assert win.settings.recent_files[0] == str(path.resolve())
    assert [a.text() for a in win.recent_menu.actions()] == ["work.ora"]
    assert win.save()  # Ctrl+S writes the project it came from, no dialog
    assert not win.document.is_modified


def test_unsaved_mark_follows_the_project_not_exports(win, tmp_path: Path) -> None:
    _paint_two_layers(win)
    assert win.export_path(tmp_path / "flat.png")
    assert win.windowTitle().startswith("*"), "an export is no project: the mark stays"
    assert win.save_project_path(tmp_path / "p.ora")
    assert not win.windowTitle().startswith("*")


def test_export_never_proposes_the_source_name_and_asks_before_replacing(
    win, tmp_path: Path, monkeypatch
) -> None:
    source = tmp_path / "photo.png"
    Image.new("RGB", (4, 4)).save(source)
    win.document.info.path = str(source)
    assert win.export_start_name() == str(tmp_path / "photo-edited.png")
    win.document.info.path = str(tmp_path / "photo.ora")
    assert win.export_start_name() == str(tmp_path / "photo-edited.png")
    target = tmp_path / "taken.png"
    target.write_bytes(b"keep me")
    proposed: list[str] = []

    def dialog(_parent, _title, start, _filter, **_kw):
        proposed.append(start)
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    win.ask_export_options = lambda path: True  # tests/ui/test_export_options.py drives it
    win.ask_overwrite = lambda path: False
    assert not win.export_dialog()
    assert target.read_bytes() == b"keep me" and proposed == [str(tmp_path / "photo-edited.png")]
    win.ask_overwrite = lambda path: True
    assert win.export_dialog()
    assert Image.open(target).size == (128, 96)


def test_export_labels_follow_the_layers_and_the_setting(win, tmp_path: Path) -> None:
    _paint_two_layers(win)
    win.document.layers[1].provenance = {"task": "inpaint", "model": "studio-inpaint", "seed": 3}
    assert win.export_path(tmp_path / "labelled.png")
    with Image.open(tmp_path / "labelled.png") as im:
        assert "Seed: 3, Model: studio-inpaint" in im.info["parameters"]
        assert "compositeWithTrainedAlgorithmicMedia" in im.info["XML:com.adobe.xmp"]
    win.settings.export_metadata = False
    assert win.export_path(tmp_path / "plain.png")
    with Image.open(tmp_path / "plain.png") as im:
        assert "parameters" not in im.info and "XML:com.adobe.xmp" not in im.info


def test_new_document_with_colour_or_transparent(win) -> None:
    win.ask_save_changes = lambda: "discard"
    win.ask_new_document = lambda: (64, 32, (10, 20, 30))
    assert win.new_document()
    doc = win.document
    assert (doc.width, doc.height) == (64, 32)
    assert (doc.layers[0].pixels == (10, 20, 30, 255)).all()
    win.ask_new_document = lambda: (16, 8, None)
    assert win.new_document()
    assert win.document.layers[0].pixels.max() == 0


def test_paste_lands_as_a_new_layer_and_copy_takes_the_selection(win) -> None:
    clip = np.zeros((10, 12, 4), np.uint8)
    clip[:] = (255, 0, 0, 255)
    QGuiApplication.clipboard().setImage(numpy_to_qimage(clip))
    before = len(win.document.layers)
    assert win.paste_image()
    doc = win.document
    assert len(doc.layers) == before + 1 and doc.active_layer.name == "Pasted"
    np.testing.assert_array_equal(doc.active_layer.pixels[:10, :12], clip)
    assert doc.active_layer.pixels[10:, :, 3].max() == 0
    doc.undo()
    assert len(doc.layers) == before, "paste is one undo step"
    doc.selection = Rect(8, 6, 20, 10)
    assert win.copy_image()
    copied = qimage_to_numpy(QGuiApplication.clipboard().image())
    np.testing.assert_array_equal(copied, doc.composite(Rect(8, 6, 20, 10)))


def test_autosave_writes_the_recovery_file_when_changed_and_save_removes_it(
    win, qtbot, studio_home: Path, tmp_path: Path
) -> None:
    win.autosave_timer.setInterval(50)
    folder = studio_home / "recovery"
    ora = folder / f"{win.recovery_key}.ora"
    qtbot.wait(200)
    assert not ora.exists(), "an unchanged document is not autosaved"
    _paint_two_layers(win)
    qtbot.waitUntil(ora.exists, timeout=5000)
    assert win.save_project_path(tmp_path / "saved.ora")
    assert not ora.exists(), "saving removes the recovery file"
