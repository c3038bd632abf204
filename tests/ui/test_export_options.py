"""Export options: after the file dialog, a small dialog with the chosen format's options only;
what the artist picks reaches the written file and is remembered; Cancel writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QLabel

from studio.imageio import read_image
from studio.ui.export_options import SIXTEEN_BIT_NOTE, ExportOptionsDialog

Fill = Callable[[ExportOptionsDialog], None]


def _export(win, monkeypatch, path: Path, fill: Fill, *, accept: bool = True) -> bool:
    """Export through the menu's dialogs: the file dialog answers ``path``, ``fill`` sets the
    options dialog, which is then accepted (Export) or cancelled."""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(path), ""))
    shown: list[ExportOptionsDialog] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, ExportOptionsDialog):
            if dialog is not None:
                dialog.close()  # never leave the test hanging on an unexpected dialog
            return
        shown.append(dialog)
        ok = accept
        try:
            fill(dialog)  # a failed assertion in it cancels (and pytest-qt reports it)
        except BaseException:
            ok = False
            raise
        finally:
            button = (
                QDialogButtonBox.StandardButton.Ok if ok else QDialogButtonBox.StandardButton.Cancel
            )
            dialog.findChild(QDialogButtonBox).button(button).click()

    QTimer.singleShot(0, answer)
    done = win.export_dialog()
    assert len(shown) == 1, "the options dialog was shown once"
    return done


def _shown(dialog: ExportOptionsDialog) -> set[str]:
    names = ("quality", "lossless", "sixteen_bit", "label")
    return {name for name in names if getattr(dialog, name) is not None}


def _composite_rgb(win) -> np.ndarray:
    return win.document.composite()[:, :, :3]


def test_jpeg_quality_reaches_the_file_and_is_remembered(win, tmp_path: Path, monkeypatch) -> None:
    seen: list[tuple[set[str], int]] = []

    def quality(value: int) -> Fill:
        def fill(dialog: ExportOptionsDialog) -> None:
            seen.append((_shown(dialog), dialog.quality.value()))
            dialog.quality.setValue(value)

        return fill

    low, high = tmp_path / "low.jpg", tmp_path / "high.jpg"
    assert _export(win, monkeypatch, low, quality(30))
    assert _export(win, monkeypatch, high, quality(95))
    assert seen == [({"quality"}, 92), ({"quality"}, 30)], "only quality; the last one offered"
    assert win.settings.export_jpeg_quality == 95
    assert low.stat().st_size < high.stat().st_size
    # libjpeg scales its base tables (luminance DC 16) by 5000/q below 50 and 200-2q above
    with Image.open(low) as a, Image.open(high) as b:
        assert a.quantization[0][0] == (16 * (5000 // 30) + 50) // 100 == 27
        assert b.quantization[0][0] == (16 * (200 - 2 * 95) + 50) // 100 == 2


def test_webp_lossless_is_pixel_identical_and_lossy_uses_its_quality(
    win, tmp_path: Path, monkeypatch
) -> None:
    lossy_row_enabled: list[bool] = []

    def lossless(dialog: ExportOptionsDialog) -> None:
        assert _shown(dialog) == {"quality", "lossless"}
        dialog.lossless.setChecked(True)
        lossy_row_enabled.append(dialog.quality.parentWidget().isEnabled())

    exact = tmp_path / "exact.webp"
    assert _export(win, monkeypatch, exact, lossless)
    assert lossy_row_enabled == [False], "quality means nothing for lossless"
    assert win.settings.export_webp_lossless
    np.testing.assert_array_equal(read_image(exact).pixels[:, :, :3], _composite_rgb(win))

    def lossy(dialog: ExportOptionsDialog) -> None:
        assert dialog.lossless.isChecked(), "remembered"
        dialog.lossless.setChecked(False)
        dialog.quality.setValue(20)

    small = tmp_path / "small.webp"
    assert _export(win, monkeypatch, small, lossy)
    assert win.settings.export_webp_quality == 20 and not win.settings.export_webp_lossless
    assert win.settings.export_jpeg_quality == 92, "JPEG keeps its own quality"
    assert small.stat().st_size < exact.stat().st_size
    error = np.abs(read_image(small).pixels[:, :, :3].astype(int) - _composite_rgb(win))
    assert error.max() > 0, "quality 20 is lossy"


def test_tiff_and_png_16_bit_each_remembered_apart(win, tmp_path: Path, monkeypatch) -> None:
    notes: list[bool] = []

    def sixteen(on: bool) -> Fill:
        def fill(dialog: ExportOptionsDialog) -> None:
            assert _shown(dialog) == {"sixteen_bit"}
            notes.append(any(x.text() == SIXTEEN_BIT_NOTE for x in dialog.findChildren(QLabel)))
            dialog.sixteen_bit.setChecked(on)

        return fill

    wide = tmp_path / "wide.tif"
    assert _export(win, monkeypatch, wide, sixteen(True))
    back = read_image(wide).pixels
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, _composite_rgb(win).astype(np.uint16) * 257)
    assert win.settings.export_tiff_16bit and not win.settings.export_png_16bit
    png = tmp_path / "plain.png"
    assert _export(win, monkeypatch, png, lambda dialog: None)
    assert read_image(png).pixels.dtype == np.uint8, "PNG keeps its own choice (8 bits)"
    wide_png = tmp_path / "wide.png"
    assert _export(win, monkeypatch, wide_png, sixteen(True))
    assert read_image(wide_png).pixels.dtype == np.uint16
    assert notes == [True, True], "16 bits are offered with the note saying what they add"


def test_the_label_switch_is_offered_when_a_model_made_something(
    win, tmp_path: Path, monkeypatch
) -> None:
    offered: list[set[str]] = []
    assert _export(win, monkeypatch, tmp_path / "painted.png", lambda d: offered.append(_shown(d)))
    win.document.layers[0].provenance = {"task": "inpaint", "model": "studio-inpaint", "seed": 4}

    def unlabel(dialog: ExportOptionsDialog) -> None:
        offered.append(_shown(dialog))
        assert dialog.label.isChecked()
        dialog.label.setChecked(False)

    assert _export(win, monkeypatch, tmp_path / "plain.png", unlabel)
    assert offered == [{"sixteen_bit"}, {"sixteen_bit", "label"}]
    assert not win.settings.export_metadata
    with Image.open(tmp_path / "plain.png") as im:
        assert "parameters" not in im.info and "XML:com.adobe.xmp" not in im.info

    def label(dialog: ExportOptionsDialog) -> None:
        assert not dialog.label.isChecked(), "remembered"
        dialog.label.setChecked(True)

    assert _export(win, monkeypatch, tmp_path / "labelled.jpg", label)
    with Image.open(tmp_path / "labelled.jpg") as im:
        assert b"compositeWithTrainedAlgorithmicMedia" in im.info["xmp"]


def test_cancel_writes_nothing_and_remembers_nothing(win, tmp_path: Path, monkeypatch) -> None:
    def change(dialog: ExportOptionsDialog) -> None:
        dialog.quality.setValue(10)

    target = tmp_path / "never.jpg"
    assert not _export(win, monkeypatch, target, change, accept=False)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    assert win.settings.export_jpeg_quality == 92
