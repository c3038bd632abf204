"""Settings: defaults when missing or corrupt, typed round trip, remembered by the window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

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
    assert loaded.paint_brush.size == Settings().paint_brush.size, "out of range: the default"
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


# -- a damaged settings file never stops the editor (issue 11) ---------------------------------

DAMAGED = {
    "deeply nested": (
        "[" * 100000,
        "Settings: settings.json could not be read (nested too deeply)",
    ),
    "NaN opacity": ('{"mask_opacity": NaN}', "Settings: reset mask_opacity to defaults"),
    "NaN brush size": ('{"mask_brush": {"size": NaN}}', "Settings: reset mask_brush.size to"),
    "huge grow": ('{"grow_px": 1000000000000000000000000000000}', "Settings: reset grow_px to"),
    "Infinity": ('{"feather_px": 3, "mask_opacity": -Infinity}', "Settings: reset mask_opacity to"),
    "sizes": (
        '{"paint_brush": {"size": -5}, "mask_brush": {"size": 1e9}}',
        "Settings: reset paint_brush.size, mask_brush.size to defaults",
    ),
    "types": ('{"mask_color": "red", "select_mode": 2}', "Settings: reset mask_color, select_mode"),
    "a list": ("[1, 2]", "Settings: settings.json holds no settings; using defaults"),
    "invalid UTF-8": (b'{"last_folder": "\xff"}', "Settings: settings.json could not be read (not"),
    "0 bytes": (b"", "Settings: settings.json could not be read (empty file); using defaults"),
}


@pytest.mark.parametrize("content, note", DAMAGED.values(), ids=DAMAGED.keys())
def test_the_editor_starts_on_a_damaged_settings_file_and_says_so_once(
    qtbot, engine, studio_home, content, note
) -> None:
    from studio.settings_validation import invalid_fields
    from studio.ui.main_window import MainWindow

    studio_home.mkdir(parents=True)
    path = Settings.path()
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    w = MainWindow(engine)
    w.ask_save_changes = lambda: "discard"
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.statusBar().currentMessage().startswith(note)
    assert invalid_fields(w.settings) == []
    assert 5 <= w.mask_panel.opacity.value() <= 100 and w.mask_panel.grow_px.value() <= 500
    assert w.settings.load_note is None, "the note is shown once, then forgotten"
    again = MainWindow(engine, w.settings)
    again.ask_save_changes = lambda: "discard"
    qtbot.addWidget(again)
    assert again.statusBar().currentMessage() == ""
    w.close()
    assert Settings.load().load_note is None, "closing wrote back a clean file"


class _ShowFails:
    """Stands in for MainWindow: builds, then fails as a broken display would."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def show(self) -> None:
        assert self.engine.isRunning(), "the engine starts once the window is built"
        raise OSError(5, "Input/output error")


class _BuildFails:
    def __init__(self, engine) -> None:
        raise OverflowError("Python int too large to convert to C int")


@pytest.mark.parametrize(
    "window, line",
    [
        (_BuildFails, "OverflowError: Python int too large to convert to C int"),
        (_ShowFails, "OSError: [Errno 5] Input/output error"),
    ],
)
def test_a_start_up_failure_is_one_message_and_exit_1_with_the_engine_stopped(
    qtbot, monkeypatch, capfd, window, line
) -> None:
    import studio.ui.main_window
    from studio.app import run_gui
    from studio.engine.thread import LIVE_THREADS

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run_gui installs its own
    monkeypatch.setattr(studio.ui.main_window, "MainWindow", window)
    assert run_gui("no-image.png") == 1
    assert not [t for t in LIVE_THREADS if t.isRunning()]
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [f"studio: error: the editor could not start: {line}"]


GUI_SCRIPT = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])

    def report_and_quit():
        from studio.ui.main_window import MainWindow

        (window,) = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
        print("STATUS:", window.statusBar().currentMessage())
        window.ask_save_changes = lambda: "discard"
        window.close()
        app.quit()

    QTimer.singleShot(300, report_and_quit)
    from studio.app import run_gui

    sys.exit(run_gui(sys.argv[1]))
    """
)


def test_run_gui_starts_on_bad_settings_and_a_bad_thread_count(tmp_path, photo_file) -> None:
    """The real start-up in a fresh process: the issue's exit 134 and traceback are gone."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text('{"grow_px": 1e400, "mask_opacity": NaN, "feather_px": 9}')
    env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_THREADS="abc", QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, "-c", GUI_SCRIPT, str(photo_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "QThread" not in out.stderr, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "STUDIO_THREADS" in line]
    assert warnings == [
        "studio: warning: STUDIO_THREADS='abc' is not a whole number from 1 to "
        f"1024; using {max(1, (os.cpu_count() or 1) - 1)}"
    ]
    assert "STATUS: Settings: reset mask_opacity, grow_px to defaults" in out.stdout
    saved = json.loads((home / "settings.json").read_text())
    assert saved["grow_px"] == 8 and saved["mask_opacity"] == 0.5 and saved["feather_px"] == 9
