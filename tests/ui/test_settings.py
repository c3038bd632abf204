"""Settings: defaults when missing or corrupt, typed round trip, remembered by the window."""

from __future__ import annotations

import json

from studio.settings import Settings


def test_missing_and_corrupt_files_give_defaults(studio_home) -> None:
    assert Settings.load() == Settings()
    studio_home.mkdir(parents=True)
    Settings.path().write_text("{ not json")
    assert Settings.load() == Settings()
    Settings.path().write_text("[1, 2]")
    assert Settings.load() == Settings()


def test_round_trip_and_bad_values_fall_back_per_field(studio_home) -> None:
    s = Settings()
    s.result_mode = "merge"
    s.mask_color = (1, 2, 3)
    s.grow_px = 12
    assert s.save()
    loaded = Settings.load()
    assert loaded == s
    data = json.loads(Settings.path().read_text())
    data["grow_px"] = "twelve"
    data["mask_color"] = [1, 2, 300]
    data["result_mode"] = "sideways"
    data["paint_brush"]["size"] = -5
    data["paint_brush"]["color"] = "red"
    data["mask_brush"] = 7
    data["unknown"] = True
    Settings.path().write_text(json.dumps(data))
    loaded = Settings.load()
    assert loaded.grow_px == Settings().grow_px
    assert loaded.mask_color == Settings().mask_color
    assert loaded.result_mode == "new_layer"
    assert loaded.paint_brush.size == 1.0, "clamped to the smallest brush"
    assert loaded.paint_brush.color == Settings().paint_brush.color
    assert loaded.mask_brush == Settings().mask_brush


def test_brush_and_mask_look_are_remembered(qtbot, engine, studio_home) -> None:
    from studio.ui.main_window import MainWindow

    w = MainWindow(engine)
    qtbot.addWidget(w)
    w.tools.set_brush("paint", size=77.0, color=(9, 8, 7))
    w.mask_panel.set_color((0, 200, 0))
    w.tool_panel.mode.setCurrentIndex(w.tool_panel.mode.findData("add"))
    w.mask_panel.grow_px.setValue(13)
    assert w.actions["grow"].text() == "Grow by 13 px"
    w.close()
    assert Settings.path().exists()
    again = MainWindow(engine)
    qtbot.addWidget(again)
    assert again.tools.brush("paint").size == 77.0
    assert again.tools.brush("paint").color == (9, 8, 7)
    assert again.canvas.mask_color.green() == 200
    assert again.tool_panel.size.value() == 77.0
    assert again.tools.mode == "add" and again.settings.grow_px == 13


def test_an_unwritable_home_does_not_break_saving(studio_home) -> None:
    studio_home.parent.mkdir(parents=True, exist_ok=True)
    studio_home.write_text("a file where the folder should be")
    assert Settings().save() is False


def test_settings_and_metrics_import_neither_qt_nor_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, studio.settings, studio.metrics, studio.document.mask_ops, "
        "studio.document.shapes; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'cv2')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", "OpenCV loads only when a flood fill runs"
