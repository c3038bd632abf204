"""Compare view: original left of a draggable divider, current right; PSNR/SSIM readout."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio import metrics

RED = (255, 0, 0)


def paint_everything(win, pointer) -> None:
    win.tools.set_brush("paint", size=200, hardness=1.0, color=RED)
    pointer.drag([(64, 48), (65, 48)])


def test_split_view_shows_original_left_and_current_right(win, pointer, qtbot, photo) -> None:
    paint_everything(win, pointer)
    qtbot.keyClick(win, Qt.Key.Key_C)
    assert win.compare.enabled and win.compare.divider.isVisible()
    assert win.compare.split == 64
    shown = pointer.rendered()
    left, right = pointer.at(30, 80), pointer.at(100, 80)
    assert tuple(shown[left.y(), left.x(), :3]) == tuple(photo[80, 30])
    assert tuple(shown[right.y(), right.x(), :3]) == RED
    # drag the divider to the right: that point is now "before" too
    pointer.drag([(64, 48), (90, 48), (110, 48)])
    assert win.compare.split == pytest.approx(110, abs=0.5)
    assert win.document.history.position == 1, "dragging the divider does not paint"
    shown = pointer.rendered()
    assert tuple(shown[right.y(), right.x(), :3]) == tuple(photo[80, 100])
    qtbot.keyClick(win, Qt.Key.Key_C)
    assert not win.compare.item.isVisible() and not win.compare.readout.isVisible()


def test_readout_reports_psnr_and_ssim_against_the_original(win, pointer, qtbot, photo) -> None:
    win.actions["compare"].trigger()
    assert "PSNR ∞ dB" in win.compare.readout.text() and "SSIM 1.0000" in win.compare.readout.text()
    win.tools.set_brush("paint", size=12, hardness=1.0, color=RED)
    pointer.drag([(100, 20), (120, 30)])  # right of the divider, away from it
    qtbot.waitUntil(lambda: "∞" not in win.compare.readout.text(), timeout=3000)
    current = win.document.composite()[:, :, :3]
    mse = np.mean((current.astype(float) - photo) ** 2)
    assert win.compare.last_quality.psnr_db == pytest.approx(10 * math.log10(255**2 / mse))
    assert f"{10 * math.log10(255**2 / mse):.2f}" in win.compare.readout.text()
    assert 0.5 < win.compare.last_quality.ssim < 1.0


def test_metrics_match_scikit_image() -> None:
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    for region in ((slice(20, 30), slice(3, 40)), (slice(0, 4), slice(0, 5)), (slice(None),) * 2):
        b = a.copy()
        b[region] = rng.integers(0, 256, b[region].shape, dtype=np.uint8)
        ref = skm.structural_similarity(
            a,
            b,
            channel_axis=2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        assert metrics.ssim(b, a) == pytest.approx(ref, abs=1e-9)
        assert metrics.psnr(b, a) == pytest.approx(skm.peak_signal_noise_ratio(a, b), abs=1e-9)


def test_metrics_edge_cases() -> None:
    a = np.full((20, 20, 3), 100, np.uint8)
    assert metrics.psnr(a, a) == math.inf and metrics.ssim(a, a) == 1.0
    b = a.copy()
    b[0, 0, 0] = 101  # MSE = 1 / 1200
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 1200))
    with pytest.raises(ValueError, match="differ in size"):
        metrics.psnr(a, a[:10])
    with pytest.raises(ValueError, match="11 px"):
        metrics.ssim(a[:5, :5], a[:5, :5])
