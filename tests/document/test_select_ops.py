"""Selections from the picture: GrabCut object masks, the colour-range wand, one undo step."""

from __future__ import annotations

import numpy as np
import pytest

from studio.document import Document, select_ops
from studio.document.shapes import Mode
from studio.geometry import Rect


def disc_scene(n: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray, Rect]:
    """A noisy red disc on a textured green background: (image, the disc, a box around it)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    img = np.empty((n, n, 3), np.float32)
    img[..., 0] = 40 + 30 * np.sin(x / 7)
    img[..., 1] = 150 + 40 * np.sin(y / 5) * np.cos(x / 9)
    img[..., 2] = 50
    img += rng.normal(0, 10, img.shape)
    cx, cy, r = 0.45 * n, 0.55 * n, 0.25 * n
    disc = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r
    img[disc] = np.array([200, 30, 35]) + rng.normal(0, 8, (int(disc.sum()), 3))
    pad = 0.06 * n
    box = Rect.from_edges(
        *(round(v) for v in (cx - r - pad, cy - r - pad, cx + r + pad, cy + r + pad))
    )
    return np.clip(img, 0, 255).astype(np.uint8), disc, box


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    selected = mask >= 0.5
    return float((selected & truth).sum() / (selected | truth).sum())


@pytest.mark.parametrize("n", [160, 1200])  # 1200: solved on a 512 px copy, then upsampled
def test_object_mask_covers_the_disc(n) -> None:
    img, disc, box = disc_scene(n)
    m = select_ops.object_mask(img, box)
    assert m.dtype == np.float32 and m.shape == disc.shape
    assert m.min() >= 0.0 and m.max() <= 1.0
    assert iou(m, disc) >= 0.9, f"IoU {iou(m, disc):.3f}"
    outside = np.ones_like(disc)
    outside[box.slices] = False
    assert not m[outside].any(), "nothing outside the box"


def test_object_mask_accepts_rgba_and_box_tuples() -> None:
    img, disc, box = disc_scene()
    rgba = np.dstack([img, np.full(disc.shape, 255, np.uint8)])
    m = select_ops.object_mask(rgba, box.tuple())
    assert iou(m, disc) >= 0.9


def test_a_foreground_stroke_brings_in_what_the_box_missed() -> None:
    img, disc, box = disc_scene()
    half = Rect.from_edges(box.x, box.y, 72, box.bottom)  # only the disc's left half
    hints = np.zeros(disc.shape, np.uint8)
    before = select_ops.object_mask(img, half, hints)
    assert not before[:, 72:].any()
    select_ops.paint_hint(hints, [(80, 88), (105, 88)], 3, select_ops.HINT_FOREGROUND)
    grown = select_ops.object_mask(img, half, hints)
    assert grown[88, 80:106].all(), "the stroke itself is always the object"
    assert grown[:, 72:].sum() > 0.8 * disc[:, 72:].sum(), "the red around the stroke joins it"
    assert iou(grown, disc) >= 0.9


def test_a_background_stroke_removes_a_second_object_in_the_box() -> None:
    img, disc, box = disc_scene()
    square = Rect(box.x + 2, box.y + 2, 20, 20)
    img[square.slices] = (40, 60, 220)  # blue: unlike the green around the box
    assert select_ops.object_mask(img, box)[square.slices].mean() > 0.9
    hints = np.zeros(disc.shape, np.uint8)
    select_ops.paint_hint(hints, [(square.x + 10, square.y + 10)], 3, select_ops.HINT_BACKGROUND)
    refined = select_ops.object_mask(img, box, hints)
    assert not refined[square.slices].any() and iou(refined, disc) >= 0.9


def test_object_mask_of_a_tiny_box_is_empty_and_wrong_hints_are_refused() -> None:
    img, _, _ = disc_scene()
    assert not select_ops.object_mask(img, (10, 10, 1, 5)).any()
    with pytest.raises(ValueError, match="hints"):
        select_ops.object_mask(img, (10, 10, 50, 50), np.zeros((3, 3), np.uint8))


def test_a_box_over_the_whole_picture_still_finds_the_object() -> None:
    img, disc, _ = disc_scene()
    m = select_ops.object_mask(img, (0, 0, img.shape[1], img.shape[0]))
    assert iou(m, disc) >= 0.9


def test_wand_selects_the_disc_and_not_the_background() -> None:
    img, disc, _ = disc_scene()
    m = select_ops.color_range_mask(img, (72, 88), tolerance=40)
    assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    assert iou(m, disc) >= 0.97 and not m[~disc].any()


def test_wand_tolerance_zero_selects_only_the_exact_colour() -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :15] = (10, 200, 10)
    img[5, 5] = (11, 200, 10)  # one level off: a colour difference of ~0.3
    m = select_ops.color_range_mask(img, (0, 0), tolerance=0)
    assert m[:, :15].sum() == 20 * 15 - 1 and m[5, 5] == 0 and not m[:, 15:].any()
    assert select_ops.color_range_mask(img, (0, 0), tolerance=1)[5, 5] == 1


def test_wand_contiguous_versus_global() -> None:
    img = np.zeros((40, 60, 3), np.uint8)
    img[:] = (30, 160, 40)
    img[5:15, 5:15] = (220, 20, 20)  # two red squares apart
    img[25:35, 40:55] = (225, 25, 20)
    one = select_ops.color_range_mask(img, (8, 8), tolerance=10, contiguous=True)
    every = select_ops.color_range_mask(img, (8, 8), tolerance=10, contiguous=False)
    assert one.sum() == 100 and one[5:15, 5:15].all()
    assert every.sum() == 100 + 150 and every[25:35, 40:55].all()
    assert not select_ops.color_range_mask(img, (99, 8), 10).any(), "a seed off the image"


def test_wand_uses_perceptual_distance() -> None:
    """Equal RGB steps are not equal to the eye: a step in dark blue is a larger Lab step than
    the same step in bright yellow... the wand follows Lab, not RGB."""
    img = np.zeros((1, 4, 3), np.uint8)
    img[0, 0] = (128, 128, 128)
    img[0, 1] = (128, 128, 148)  # +20 blue
    img[0, 2] = (128, 148, 128)  # +20 green: larger difference in L*a*b*
    lab = select_ops.lab_image(img)
    d_blue = np.linalg.norm(lab[0, 1] - lab[0, 0])
    d_green = np.linalg.norm(lab[0, 2] - lab[0, 0])
    tol = (d_blue + d_green) / 2
    m = select_ops.color_range_mask(img, (0, 0), tol, contiguous=False)
    assert d_blue < d_green and m[0, 1] == 1 and m[0, 2] == 0


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (Mode.REPLACE, lambda old, new: new),
        (Mode.ADD, np.maximum),
        (Mode.SUBTRACT, lambda old, new: old * (1 - new)),
        (Mode.INTERSECT, np.minimum),
    ],
)
def test_apply_selection_is_one_undo_step_by_mode(mode, expected) -> None:
    doc = Document(40, 30)
    doc.mask[0:20, 0:20] = 1.0
    old = doc.mask.copy()
    cover = np.zeros_like(old)
    cover[10:30, 10:30] = 1.0
    step = select_ops.apply_selection(doc, cover, mode, "Magic wand")
    np.testing.assert_array_equal(doc.mask, expected(old, cover))
    assert doc.history.position == 1 and step.name == "Magic wand"
    doc.undo()
    np.testing.assert_array_equal(doc.mask, old)
    assert select_ops.apply_selection(doc, old, Mode.REPLACE, "same") is None


def test_paint_hint_and_outline() -> None:
    hints = np.zeros((20, 20), np.uint8)
    box = select_ops.paint_hint(hints, [(5, 5), (15, 5)], 2, select_ops.HINT_BACKGROUND)
    assert hints[5, 5:16].all() and set(np.unique(hints)) == {0, 2}
    assert box == Rect.from_edges(3, 3, 18, 8)
    cover = np.zeros((20, 20), np.float32)
    cover[4:10, 6:12] = 1
    (poly,) = select_ops.outline_polygons(cover)
    assert poly[:, 0].min() == 6.5 and poly[:, 0].max() == 11.5


def test_specks_of_background_colour_inside_the_object_are_filled() -> None:
    img, disc, box = disc_scene()
    img[86:90, 60:64] = img[10:14, 10:14]  # a speck of the green background inside the disc
    m = select_ops.object_mask(img, box)
    assert m[86:90, 60:64].min() == 1.0 and iou(m, disc) >= 0.9
