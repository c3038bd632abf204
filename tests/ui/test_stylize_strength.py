"""The Stylize strength slider shows its value and jumps to where the groove is clicked."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from studio.ui.panels.stylize import StylizePanel


@pytest.fixture
def panel(qtbot) -> StylizePanel:
    panel = StylizePanel()
    qtbot.addWidget(panel)
    panel.resize(360, 700)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_the_strength_is_shown_as_a_number_both_ways(panel) -> None:
    assert panel.strength_value.value() == 100 and panel.strength_value.suffix() == " %"
    panel.strength.setValue(35)
    assert panel.strength_value.value() == 35
    panel.strength_value.setValue(60)
    assert panel.strength.value() == 60
    assert panel.params().strength == pytest.approx(0.6)


def _groove_point(slider, fraction: float) -> QPoint:
    """The point on the groove that stands for ``fraction`` of the range."""
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    style = slider.style()
    groove = style.subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, slider
    )
    handle = style.subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider
    )
    span = groove.width() - handle.width()
    x = groove.x() + handle.width() / 2 + fraction * span
    return QPoint(round(x), groove.center().y())


@pytest.mark.parametrize("fraction", [0.25, 0.7])
def test_a_click_on_the_groove_jumps_there(qtbot, panel, fraction) -> None:
    slider = panel.strength
    slider.setValue(100)
    qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=_groove_point(slider, fraction))
    assert slider.value() == pytest.approx(fraction * 100, abs=3), "not one page step from 100"
    assert panel.strength_value.value() == slider.value()
