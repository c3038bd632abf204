"""The Inpaint panel: the method chosen by the mask by default, the artist's choice
remembered, and buttons that stay where they are whatever method is described."""

from __future__ import annotations

from PySide6.QtCore import QPoint

from studio.settings import Settings
from studio.ui.panels.inpaint import InpaintPanel


def test_a_fresh_window_chooses_by_the_mask_and_remembers_a_new_choice(qtbot, win, engine) -> None:
    from studio.ui.main_window import MainWindow

    panel = win.inpaint_panel
    assert panel.method.current() == "auto"
    assert panel.params().method == "auto"
    assert panel.outpaint_params().method == "auto"
    panel.method.select("patchmatch")
    win.close()
    assert Settings.load().inpaint_method == "patchmatch"
    again = MainWindow(engine)
    qtbot.addWidget(again)
    assert again.inpaint_panel.method.current() == "patchmatch"


def test_an_unknown_remembered_method_falls_back_to_the_default(qtbot) -> None:
    panel = InpaintPanel(Settings(inpaint_method="gone-model"))
    qtbot.addWidget(panel)
    assert panel.method.current() == "auto"


def _button_positions(qtbot, panel: InpaintPanel) -> dict[str, tuple]:
    seen = {}
    for index in range(panel.method.combo.count()):
        panel.method.combo.setCurrentIndex(index)
        qtbot.wait(1)  # let the layout settle
        spots = []
        for button in (panel.run_button, panel.outpaint_button):
            top_left = button.mapTo(panel, QPoint(0, 0))
            spots.append((top_left.x(), top_left.y(), button.width(), button.height()))
        seen[panel.method.current()] = tuple(spots)
    return seen


def test_the_buttons_do_not_move_when_the_method_changes(qtbot) -> None:
    panel = InpaintPanel()
    qtbot.addWidget(panel)
    for width in (260, 420):
        panel.resize(width, 700)
        panel.show()
        qtbot.waitExposed(panel)
        seen = _button_positions(qtbot, panel)
        assert len(seen) >= 4
        assert len(set(seen.values())) == 1, f"at {width} px the buttons moved: {seen}"
        label = panel.method.description
        assert label.height() >= label.heightForWidth(label.width()), "the text is clipped"
