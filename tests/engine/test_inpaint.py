"""Inpaint/outpaint task: untouched pixels stay identical, regions stream, errors are clear."""

from __future__ import annotations

import numpy as np
import pytest

from studio.engine.inpaint_regions import color_match, grow_and_feather, plan_regions
from studio.engine.jobs import CancelToken, InpaintParams, JobRequest, OutpaintParams
from studio.engine.messages import JobCancelled, JobFailed, JobFinished, TileReady
from studio.engine.runner import JobRunner

METHODS = [
    "telea",
    "navier-stokes",
    "patchmatch",
    "studio-inpaint",
    "studio-inpaint-hybrid",
    "auto",
]


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner()


def run(runner, image, mask=None, cancel=None, **params):
    return list(runner.run(JobRequest(InpaintParams(**params), image, mask=mask), cancel))


def three_regions(h=96, w=128) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[5:15, 10:30] = 1  # top left
    mask[70:85, 90:120] = 1  # bottom right
    mask[45:55, 10:25] = 1  # middle left
    return mask


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("grow", "feather"), [(0, 0), (3, 5)])
def test_pixels_outside_the_grown_feathered_mask_are_identical(
    runner, photo, method, grow, feather
) -> None:
    mask = three_regions()
    out = run(runner, photo, mask, method=method, grow=grow, feather=feather, padding=16)[-1]
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    alpha = grow_and_feather(mask, grow, feather)
    np.testing.assert_array_equal(out.image[alpha == 0], photo[alpha == 0])
    assert not np.array_equal(out.image[mask > 0], photo[mask > 0]), "nothing was filled"


@pytest.mark.parametrize("method", METHODS)
def test_mask_touching_the_border(runner, photo, method) -> None:
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[:20, :25] = 1
    mask[-10:, :] = 1
    out = run(runner, photo, mask, method=method)[-1]
    assert isinstance(out, JobFinished)
    np.testing.assert_array_equal(out.image[mask == 0], photo[mask == 0])


def test_regions_stream_top_to_bottom_and_cover_their_holes(runner, photo) -> None:
    mask = three_regions()
    messages = run(runner, photo, mask, method="telea", padding=4)
    tiles = [m for m in messages if isinstance(m, TileReady)]
    assert len(tiles) == 3 and all(t.final for t in tiles)
    assert [t.rect.y for t in tiles] == sorted(t.rect.y for t in tiles)
    for t in tiles:
        assert (t.pixels.shape[0], t.pixels.shape[1]) == (t.rect.h, t.rect.w)
    covered = np.zeros(mask.shape, bool)
    for t in tiles:
        covered[t.rect.slices] = True
    assert covered[mask > 0].all()


def test_cancel_between_regions(runner, photo) -> None:
    token = CancelToken()
    messages = []
    for m in JobRunner().run(
        JobRequest(InpaintParams("patchmatch", padding=4), photo, mask=three_regions()), token
    ):
        messages.append(m)
        if isinstance(m, TileReady):
            token.cancel()
    assert isinstance(messages[-1], JobCancelled)
    assert sum(isinstance(m, TileReady) for m in messages) == 1


@pytest.mark.parametrize(
    ("mask", "fragment"),
    [
        (np.zeros((96, 128), np.float32), "the mask is empty"),
        (np.ones((96, 128), np.float32), "covers the whole image"),
        (np.ones((10, 10), np.float32), "must be the same size"),
        (None, "needs a mask"),
    ],
)
def test_bad_masks_fail_clearly_and_change_nothing(runner, photo, mask, fragment) -> None:
    before = photo.copy()
    out = run(runner, photo, mask, method="telea")[-1]
    assert isinstance(out, JobFailed) and out.kind == "bad_input" and fragment in out.message
    np.testing.assert_array_equal(photo, before)


def test_sixteen_bit_and_alpha_survive(runner, photo) -> None:
    rgba16 = np.dstack([photo.astype(np.uint16) * 257, np.full(photo.shape[:2], 40000, np.uint16)])
    mask = three_regions()
    out = run(runner, rgba16, mask, method="telea")[-1]
    assert out.image.dtype == np.uint16 and out.image.shape == rgba16.shape
    assert (out.image[:, :, 3] == 40000).all()
    np.testing.assert_array_equal(out.image[mask == 0], rgba16[mask == 0])


def test_color_match_removes_a_shift_but_keeps_a_continuous_fill() -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    image = np.dstack([0.3 + x / 200, 0.4 + y / 200, 0.5 + 0 * x]) + rng.normal(
        0, 0.01, (64, 64, 3)
    )
    image = image.astype(np.float32)
    hole = np.zeros((64, 64), np.float32)
    hole[20:44, 20:44] = 1
    shifted = image.copy()
    shifted[hole > 0] += np.float32(0.12)  # a fill that came back too bright
    fixed = color_match(shifted, image, hole)
    err_before = np.abs(shifted - image)[hole > 0].mean()
    err_after = np.abs(fixed - image)[hole > 0].mean()
    assert err_after < 0.25 * err_before, (err_before, err_after)
    untouched = color_match(image, image, hole)  # a perfect fill is left nearly alone:
    change = np.abs(untouched - image)  # only the noise of the border estimate, < 5/255
    assert change.max() < 5 / 255 and change.mean() < 1 / 255


def test_plan_regions_merges_overlapping_contexts() -> None:
    mask = np.zeros((100, 100), np.float32)
    mask[10:20, 10:20] = 1
    mask[10:20, 30:40] = 1  # close: contexts overlap -> one region
    mask[80:90, 80:90] = 1
    regions = plan_regions(mask, padding=8)
    assert len(regions) == 2
    assert regions[0].hole_box.x == 10 and regions[0].hole_box.right == 40


def test_outpaint_extends_and_keeps_the_original(runner, photo) -> None:
    out = list(
        runner.run(JobRequest(OutpaintParams("telea", left=20, bottom=10, feather=4), photo))
    )[-1]
    assert isinstance(out, JobFinished)
    assert out.image.shape == (106, 148, 3)
    inner = out.image[:96, 20:][:, 5:]  # beyond the feather the original is untouched
    np.testing.assert_array_equal(inner[:-5], photo[:, 5:][:-5])
    assert out.info["offset"] == (20, 0)


def test_a_long_outpaint_is_filled_tile_by_tile_at_full_resolution(runner, monkeypatch) -> None:
    """1-px stripes survive only if nothing is downscaled: the identity 'filler' returns the
    mirrored start, which must come back exactly, with no call larger than the method's size."""
    from studio.engine.tasks import inpaint as task

    shapes: list[tuple[int, int]] = []
    holes: list[np.ndarray] = []

    def identity(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        shapes.append(image.shape[:2])
        holes.append(hole.copy())
        return image

    def filler_for(params, ctx):
        return identity, 256
        yield  # a generator, like the real one

    monkeypatch.setattr(task, "_filler_for", filler_for)
    stripes = np.zeros((96, 700, 3), np.uint8)
    stripes[:, ::2] = (250, 120, 10)
    messages = list(runner.run(JobRequest(OutpaintParams("telea", bottom=40, feather=0), stripes)))
    out = messages[-1]
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    np.testing.assert_array_equal(out.image[:96], stripes)
    np.testing.assert_array_equal(out.image[96:], stripes[94:54:-1])  # mirrored, full detail
    assert len(shapes) > 1 and max(max(s) for s in shapes) <= 256
    # the first tile's context holds only the original: the rest of the new strip (still the
    # mirrored start) is given as hole too, not as content to continue
    assert holes[0][-40:].all() and not holes[0][:-40].any()
    assert not holes[-1][-40:].all(), "by the last tile, its neighbours are filled: context"
    assert len([m for m in messages if isinstance(m, TileReady)]) == len(shapes)


def test_outpaint_tiles_go_outward_and_the_seam_last() -> None:
    from studio.engine.inpaint_regions import outpaint_tiles
    from studio.geometry import Rect

    alpha = np.ones((100, 300), np.float32)
    original = Rect(0, 0, 150, 100)
    alpha[original.slices] = 0
    alpha[:, 140:150] = 0.5  # the feather reaching into the original
    tiles = outpaint_tiles(alpha, original, 60)
    # the right strip, seam included (x 140..300), cut into 3x2 tiles of at most 60 px
    assert [(t.x, t.y) for t in tiles] == [
        (140, 0),
        (140, 50),
        (193, 0),
        (193, 50),
        (247, 0),
        (247, 50),
    ]
    assert max(max(t.w, t.h) for t in tiles) <= 60
    covered = np.zeros(alpha.shape, bool)
    for t in tiles:
        assert not covered[t.slices].any(), "tiles do not overlap"
        covered[t.slices] = True
    assert covered[alpha > 0].all()
    # extending on all sides: the corners come after the tiles touching the original
    alpha = np.ones((200, 200), np.float32)
    alpha[50:150, 50:150] = 0
    tiles = outpaint_tiles(alpha, Rect(50, 50, 100, 100), 50)
    assert len(tiles) == 12 and (tiles[0].x, tiles[0].y) == (50, 0)
    assert {(t.x, t.y) for t in tiles[-4:]} == {(0, 0), (150, 0), (0, 150), (150, 150)}


def test_outpaint_rejects_nothing_to_do(runner, photo) -> None:
    out = list(runner.run(JobRequest(OutpaintParams("telea"), photo)))[-1]
    assert isinstance(out, JobFailed) and "at least one side" in out.message


@pytest.mark.parametrize(
    ("size", "aspect", "expected"),
    [
        ((100, 100), "16:9", {"left": 39, "right": 39, "top": 0, "bottom": 0}),
        ((160, 90), "1:1", {"left": 0, "right": 0, "top": 35, "bottom": 35}),
        ((101, 100), "2/1", {"left": 49, "right": 50, "top": 0, "bottom": 0}),
    ],
)
def test_margins_for_an_aspect_ratio(size, aspect, expected) -> None:
    from studio.engine.tasks.inpaint import margins_for_aspect, parse_aspect

    margins = margins_for_aspect(*size, parse_aspect(aspect))
    assert margins == expected


@pytest.mark.parametrize(("grow", "feather"), [(0, 0), (4, 6), (-2, 3)])
def test_grow_and_feather_is_the_same_anywhere_on_a_big_canvas(grow, feather) -> None:
    """It works inside the mask's bounding box only; the result must not depend on that."""
    small = np.zeros((80, 90), np.float32)
    small[32:45, 35:42] = 1  # last hole column 41
    small[50, 60] = 1
    big = np.zeros((400, 500), np.float32)
    big[250:330, 300:390] = small
    expected = grow_and_feather(small, grow, feather)
    out = grow_and_feather(big, grow, feather)
    np.testing.assert_allclose(out[250:330, 300:390], expected, atol=1e-6)
    assert out.sum() == pytest.approx(expected.sum(), abs=1e-3), "nothing outside the box"
    edge = expected[38, 42 + grow]  # first column outside the grown box
    assert edge == pytest.approx(1 - 1 / (feather + 1) if feather else 0.0, abs=1e-6)
