"""Tiling: plans cover the image; crop mode equals untiled; blend is seamless; OOM halves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.engine.events import Partial, Progress
from studio.engine.jobs import CancelToken
from studio.engine.tiling import plan_tiles, run_tiled, tile_for_budget
from studio.errors import Cancelled, OutOfMemoryError
from studio.geometry import Rect


def drain(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return stop.value, events


@pytest.mark.parametrize(
    ("w", "h", "tile", "pad", "blend"),
    [(100, 70, 32, 5, 0), (64, 64, 64, 8, 0), (97, 33, 20, 3, 8), (5, 5, 2, 1, 0)],
)
def test_cores_partition_the_image(w, h, tile, pad, blend) -> None:
    tiles = plan_tiles(w, h, tile, pad, blend)
    cover = np.zeros((h, w), int)
    for t in tiles:
        cover[t.core.slices] += 1
        assert t.footprint.contains(t.core) and t.context.contains(t.footprint)
        assert t.core.w <= tile and t.core.h <= tile
    assert (cover == 1).all()


def conv_fn(weight: torch.Tensor, scale: int):
    """A 3-layer 3x3 conv net (receptive field 3 px each side) plus nearest upscale."""

    def fn(tile: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(tile.transpose(2, 0, 1))[None]
        for _ in range(3):
            x = torch.tanh(torch.nn.functional.conv2d(x, weight, padding=1))
        x = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest")
        return x[0].permute(1, 2, 0).numpy()

    return fn


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_crop_mode_equals_untiled(scale) -> None:
    rng = np.random.default_rng(1)
    image = rng.random((70, 90, 3), dtype=np.float32)
    fn = conv_fn(torch.randn(3, 3, 3, 3, generator=torch.Generator().manual_seed(0)) * 0.3, scale)
    whole, _ = drain(run_tiled(image, fn, scale=scale, tile=0, pad=3, cancel=CancelToken()))
    tiled, events = drain(run_tiled(image, fn, scale=scale, tile=24, pad=3, cancel=CancelToken()))
    np.testing.assert_allclose(tiled, whole, atol=1e-6, err_msg="tile seams in crop mode")
    partials = [e for e in events if isinstance(e, Partial)]
    assert len(partials) == len(plan_tiles(90, 70, 24, 3)) and all(p.final for p in partials)


def test_blend_mode_is_smooth_across_tiles() -> None:
    image = np.zeros((64, 64, 1), np.float32)
    # a function with per-tile statistics: output = input + tile mean, like instance norm would
    offsets = iter(np.linspace(0, 1, 100))

    def fn(tile):
        return tile + np.float32(next(offsets))

    out, _ = drain(run_tiled(image, fn, scale=1, tile=32, pad=0, blend=16, cancel=CancelToken()))
    steps = np.abs(np.diff(out[:, :, 0], axis=1)).max()
    assert steps < 0.1, f"largest jump between neighbouring pixels {steps:.3f}: a visible seam"


def test_quantize_writes_uint8_output() -> None:
    image = np.full((10, 10, 3), 0.5, np.float32)
    out, _ = drain(
        run_tiled(
            image,
            lambda t: t,
            scale=1,
            tile=4,
            pad=1,
            cancel=CancelToken(),
            quantize=lambda x: (x * 255 + 0.5).astype(np.uint8),
            out_dtype=np.uint8,
        )
    )
    assert out.dtype == np.uint8 and (out == 128).all()


def test_cancel_between_tiles() -> None:
    token = CancelToken()
    gen = run_tiled(
        np.zeros((40, 40, 3), np.float32), lambda t: t, scale=1, tile=10, pad=0, cancel=token
    )
    seen = 0
    with pytest.raises(Cancelled):
        for event in gen:
            if isinstance(event, Partial):
                seen += 1
                token.cancel()
    assert seen == 1


def test_out_of_memory_halves_the_tile_and_goes_on() -> None:
    calls = []

    def fn(tile):
        calls.append(tile.shape[:2])
        if max(tile.shape[:2]) > 40:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return tile * 2

    image = np.ones((64, 64, 3), np.float32)
    out, events = drain(run_tiled(image, fn, scale=1, tile=64, pad=4, cancel=CancelToken()))
    assert (out == 2).all()
    assert any(isinstance(e, Progress) and "out of memory" in e.stage for e in events)


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error() -> None:
    def fn(tile):
        raise MemoryError()

    gen = run_tiled(
        np.ones((64, 64, 3), np.float32), fn, scale=1, tile=64, pad=0, cancel=CancelToken()
    )
    with pytest.raises(OutOfMemoryError, match="not enough memory"):
        drain(gen)


def test_tile_for_budget_is_bounded_and_a_multiple() -> None:
    assert tile_for_budget(4096, 1 << 30) % 8 == 0
    assert tile_for_budget(1e9, 1) == 64
    assert tile_for_budget(1, 1 << 40) == 1024


@pytest.mark.parametrize(("w", "h", "tile", "pad"), [(1000, 700, 256, 16), (300, 90, 64, 10)])
def test_uniform_tiles_have_one_shape_and_cover_their_cores(w, h, tile, pad) -> None:
    tiles = plan_tiles(w, h, tile, pad, uniform=True)
    shapes = {(t.context.w, t.context.h) for t in tiles}
    assert len(shapes) == 1, shapes
    for t in tiles:
        assert t.context.intersect(Rect.from_size(w, h)) == t.context  # inside the image
        assert t.context.x <= t.core.x - min(pad, t.core.x)
        assert t.context.right >= t.core.right + min(pad, w - t.core.right)
        assert t.context.y <= t.core.y - min(pad, t.core.y)
        assert t.context.bottom >= t.core.bottom + min(pad, h - t.core.bottom)
    plain = plan_tiles(w, h, tile, pad)
    assert [t.core for t in tiles] == [t.core for t in plain]
    assert len({(t.context.w, t.context.h) for t in plain}) > 1  # what uniform fixes


def test_uniform_crop_mode_equals_untiled() -> None:
    rng = np.random.default_rng(3)
    image = rng.random((70, 90, 3), dtype=np.float32)
    inner = conv_fn(torch.randn(3, 3, 3, 3, generator=torch.Generator().manual_seed(0)) * 0.3, 2)
    seen: set[tuple[int, int]] = set()

    def fn(tile: np.ndarray) -> np.ndarray:
        seen.add(tile.shape[:2])
        return inner(tile)

    whole, _ = drain(run_tiled(image, fn, scale=2, tile=0, pad=3, cancel=CancelToken()))
    seen.clear()
    gen = run_tiled(image, fn, scale=2, tile=24, pad=3, cancel=CancelToken(), uniform=True)
    tiled, _ = drain(gen)
    assert len(seen) == 1, f"tile shapes {seen}: a compiled model would compile once per shape"
    np.testing.assert_allclose(tiled, whole, atol=1e-6, err_msg="tile seams in uniform crop mode")
