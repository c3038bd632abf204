"""Auto method: thin strokes go to the network, object-sized parts to the hybrid."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.engine.inpaint_choice import (
    HYBRID,
    NETWORK,
    OBJECT_RADIUS,
    auto_filler,
    choose_method,
    network_fill_at,
    object_parts,
)
from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.jobs import InpaintParams, JobRequest
from studio.engine.messages import JobFinished
from studio.engine.runner import JobRunner


def stroke(h: int = 256, w: int = 256, width: int = 24) -> np.ndarray:
    """A long thin stroke across the whole picture (a wire, a scratch)."""
    mask = np.zeros((h, w), np.uint8)
    cv2.line(mask, (40, 50), (w - 40, h - 50), 1, width)
    return mask.astype(np.float32)


def disc(h: int = 256, w: int = 256, radius: int = 45, centre=(160, 120)) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, centre, radius, 1, -1)
    return mask.astype(np.float32)


def test_a_long_thin_stroke_goes_to_the_network_however_large() -> None:
    mask = stroke(width=2 * OBJECT_RADIUS - 8)
    assert mask.mean() > 0.1, "the stroke covers much of the picture"
    assert not object_parts(mask).any()
    assert choose_method(mask) == NETWORK


def test_an_object_sized_blob_goes_to_the_hybrid() -> None:
    mask = disc(radius=OBJECT_RADIUS + 5)
    np.testing.assert_array_equal(object_parts(mask), mask > 0)
    assert choose_method(mask) == HYBRID


def test_parts_are_judged_one_by_one() -> None:
    thin, blob = stroke(width=10), disc(radius=OBJECT_RADIUS + 15, centre=(70, 190))
    blob[thin > 0] = 0  # keep them apart: two connected parts
    blob = cv2.erode(blob, np.ones((9, 9), np.uint8))
    mask = np.maximum(thin, blob)
    parts = object_parts(mask)
    np.testing.assert_array_equal(parts, blob > 0)
    assert choose_method(mask) == HYBRID


@pytest.mark.parametrize("mask", [np.zeros((40, 50), np.float32), np.full((3, 3), 0.4)])
def test_nothing_to_fill_is_no_object(mask) -> None:
    assert not object_parts(mask).any() and choose_method(mask) == NETWORK


def test_choice_is_pure() -> None:
    mask = np.maximum(stroke(), disc())
    before = mask.copy()
    assert choose_method(mask) == choose_method(mask.copy())
    np.testing.assert_array_equal(mask, before)


def flat_network(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A stand-in network: the mean known colour in the hole (the 'smudge')."""
    out = image.copy()
    out[hole > 0.5] = image[hole <= 0.5].mean(axis=0)
    return out


@pytest.fixture
def grass() -> np.ndarray:
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 0.12, (256, 256, 3)).astype(np.float32)
    return np.clip(0.45 + cv2.GaussianBlur(noise, (3, 3), 0.7), 0, 1).astype(np.float32)


def lap_std(img: np.ndarray, mask: np.ndarray) -> float:
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return float(cv2.Laplacian(img.mean(axis=2), cv2.CV_32F, ksize=1)[inner].std())


def test_auto_keeps_the_network_on_strokes_and_textures_the_objects(grass) -> None:
    thin, blob = stroke(width=10), disc(radius=OBJECT_RADIUS + 20, centre=(70, 190))
    blob[cv2.dilate(thin, np.ones((15, 15), np.uint8)) > 0] = 0
    mask = np.maximum(thin, blob)
    out = auto_filler(flat_network)(grass, mask)
    smudge = flat_network(grass, mask)
    np.testing.assert_array_equal(out[mask == 0], grass[mask == 0])
    np.testing.assert_array_equal(out[thin > 0], smudge[thin > 0])
    # the object part got texture: its fine detail is near the real grass's, not flat
    assert lap_std(out, blob) > 0.4 * lap_std(grass, blob), (
        lap_std(out, blob),
        lap_std(grass, blob),
    )
    # thin strokes only: exactly the network
    np.testing.assert_array_equal(auto_filler(flat_network)(grass, thin), flat_network(grass, thin))


def test_network_fill_at_a_reduced_size_keeps_known_pixels(grass) -> None:
    calls = []

    def network(image, hole):
        calls.append(image.shape[:2])
        return flat_network(image, hole)

    mask = disc(radius=60)
    out = network_fill_at(network, grass, mask, 128)
    assert calls == [(128, 128)]
    np.testing.assert_array_equal(out[mask == 0], grass[mask == 0])
    assert np.abs(out[mask > 0] - grass[mask == 0].mean(axis=0)).max() < 0.05


def test_auto_through_the_engine_textures_an_object_and_keeps_the_rest(photo) -> None:
    big = cv2.resize(photo, (256, 192), interpolation=cv2.INTER_CUBIC)
    mask = disc(192, 256, radius=OBJECT_RADIUS + 10, centre=(130, 100))
    request = JobRequest(InpaintParams("auto", feather=3), big, mask=mask)
    out = list(JobRunner().run(request))[-1]
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    untouched = grow_and_feather(mask, 0, 3) == 0
    np.testing.assert_array_equal(out.image[untouched], big[untouched])
    assert out.info["method"] == "auto"
