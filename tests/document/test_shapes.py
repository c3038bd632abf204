"""Shape rasterisation (coverage and area) and combining shapes with the mask as undo steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.document import Document, shapes
from studio.document.shapes import Mode
from studio.geometry import Rect

CLIP = Rect(0, 0, 200, 200)


def supersampled(points, box: Rect, n: int = 16) -> np.ndarray:
    """Reference coverage: the fraction of n x n sample points inside (even-odd ray casting)."""
    p = np.asarray(points, float)
    offs = (np.arange(n) + 0.5) / n
    ys = (np.arange(box.y, box.bottom)[:, None] + offs[None, :]).ravel()
    xs = (np.arange(box.x, box.right)[:, None] + offs[None, :]).ravel()
    X, Y = np.meshgrid(xs, ys)
    inside = np.zeros(X.shape, bool)
    x0, y0 = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for a, b, c, d in zip(x0, y0, x1, y1, strict=True):
        crosses = (b > Y) != (d > Y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = a + (Y - b) * (c - a) / (d - b)
        inside ^= crosses & (xint > X)
    return inside.reshape(box.h, n, box.w, n).mean(axis=(1, 3))


def test_integer_rectangle_is_exact() -> None:
    box, cover = shapes.polygon_coverage(shapes.rectangle(30, 12, 10, 20), CLIP)
    assert box == Rect(10, 12, 20, 8)
    assert (cover == 1.0).all()


@pytest.mark.parametrize(
    "points",
    [
        shapes.rectangle(10.3, 20.7, 50.6, 41.2),
        [(5, 5), (60, 12), (30, 70)],
        [(10, 10), (90, 10), (90, 60), (50, 30), (10, 60)],  # concave
        shapes.ellipse(20, 30, 60, 56),
    ],
)
def test_coverage_matches_a_supersampled_reference(points) -> None:
    box, cover = shapes.polygon_coverage(points, CLIP)
    ref = supersampled(points, box)
    # rows are sampled 4x, columns exactly: per-pixel error at most ~1/4 on edge pixels
    assert np.abs(cover - ref).max() <= 0.26
    assert cover.sum() == pytest.approx(ref.sum(), rel=0.01)


def test_ellipse_area_and_clipping() -> None:
    _, cover = shapes.polygon_coverage(shapes.ellipse(0, 0, 100, 60), Rect(0, 0, 400, 400))
    assert cover.sum() == pytest.approx(math.pi * 50 * 30, rel=0.002)
    box, cover = shapes.polygon_coverage(shapes.rectangle(-10, -10, 20, 15), Rect(0, 0, 40, 40))
    assert box == Rect(0, 0, 20, 15) and cover.sum() == 300
    box, _ = shapes.polygon_coverage(shapes.rectangle(-50, -50, -10, -10), Rect(0, 0, 40, 40))
    assert box.is_empty()


def test_self_intersecting_lasso_fills_both_lobes() -> None:
    _, cover = shapes.polygon_coverage([(0, 0), (20, 20), (20, 0), (0, 20)], CLIP)
    assert cover.sum() == pytest.approx(200)


def test_modes_combine_with_the_mask() -> None:
    old = np.array([[0.0, 0.5, 1.0]], np.float32)
    cov = np.array([[1.0, 0.5, 0.0]], np.float32)
    np.testing.assert_allclose(shapes.combine(old, cov, Mode.ADD), [[1, 0.5, 1]])
    np.testing.assert_allclose(shapes.combine(old, cov, Mode.SUBTRACT), [[0, 0.25, 1]])
    np.testing.assert_allclose(shapes.combine(old, cov, Mode.INTERSECT), [[0, 0.5, 0]])
    np.testing.assert_allclose(shapes.combine(old, cov, Mode.REPLACE), cov)


def test_apply_shape_steps_and_memory() -> None:
    doc = Document(2048, 2048)
    shapes.apply_shape(doc, shapes.rectangle(100, 100, 140, 120), Mode.ADD, "rectangle")
    step = doc.history.current_step()
    assert step.name == "Add rectangle to mask" and step.nbytes == 2 * 4 * 40 * 20
    shapes.apply_shape(doc, shapes.rectangle(110, 100, 120, 120), "subtract", "rectangle")
    assert doc.mask.sum() == 30 * 20
    shapes.apply_shape(doc, shapes.rectangle(0, 0, 10, 10), Mode.REPLACE, "rectangle")
    assert doc.mask.sum() == 100 and doc.mask[100:120, 100:110].max() == 0
    step = doc.history.current_step()
    assert step.nbytes == 2 * 4 * 140 * 120, "replace keeps the box of everything that changed"
    assert shapes.apply_shape(doc, shapes.rectangle(0, 0, 10, 10), Mode.ADD, "r") is None
    doc.jump_to(0)
    assert not doc.mask.any()
