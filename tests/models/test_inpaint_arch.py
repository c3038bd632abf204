"""InpaintUNet: detection, loading, exact compositing, sizes, crop-around-the-hole inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.models.archs.inpaint_unet import (
    SIZE_MULTIPLE,
    InpaintUNet,
    InpaintUNetArch,
    hole_regions,
    inpaint_image,
    smooth_fill,
)
from studio.models.archs.rrdbnet import RRDBNetArch
from studio.models.archs.srvgg import SRVGGArch, SRVGGNetCompact
from studio.models.archs.upconv7 import UpConv7Arch

ARCH = InpaintUNetArch()


def _tiny(block: str = "ffc", blocks: int = 2, seed: int = 0) -> InpaintUNet:
    torch.manual_seed(seed)
    net = InpaintUNet((8, 8, 16), blocks, block)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # weights large enough that raw predictions leave [0, 1]
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim > 1 else 0.2))
    return net.eval()


def _input(h: int, w: int, seed: int = 0, p_hole: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(1, 3, h, w, generator=g)
    mask = (torch.rand(1, 1, h, w, generator=g) < p_hole).float()
    return torch.cat([img, mask], 1)


@pytest.mark.parametrize("block", ["ffc", "gated"])
def test_detect_load_round_trip(block: str) -> None:
    net = _tiny(block, blocks=3)
    sd = net.state_dict()
    assert ARCH.detect(sd)
    loaded = ARCH.load(sd)
    assert (loaded.scale, loaded.in_channels, loaded.out_channels) == (1, 4, 3)
    assert loaded.size_multiple == SIZE_MULTIPLE == 8
    assert loaded.receptive_field >= 64
    assert loaded.extra == {"block": block, "blocks": 3, "widths": (8, 8, 16)}
    x = _input(24, 32)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), net(x))


def test_other_architectures_do_not_claim_it_and_it_claims_none_of_theirs() -> None:
    sd = _tiny().state_dict()
    for other in (SRVGGArch(), RRDBNetArch(), UpConv7Arch()):
        assert not other.detect(sd), other.id
    assert not ARCH.detect(SRVGGNetCompact(3, 3, 8, 2, 2).state_dict())


@pytest.mark.parametrize("block", ["ffc", "gated"])
def test_pixels_outside_the_mask_are_bit_identical(block: str) -> None:
    net = _tiny(block)
    x = _input(32, 48, seed=1)
    with torch.no_grad():
        raw = net.predict(x[:, :3], x[:, 3:])
        y = net(x)
    assert raw.min() < 0 or raw.max() > 1  # the composite, not luck, keeps the outside exact
    keep = (x[:, 3:] == 0).expand(-1, 3, -1, -1)
    assert torch.equal(y[keep], x[:, :3][keep])
    hole = ~keep
    assert y[hole].min() >= 0 and y[hole].max() <= 1
    assert not torch.equal(y[hole], x[:, :3][hole])


def test_hole_content_is_ignored_and_empty_mask_is_identity() -> None:
    net = _tiny()
    x = _input(16, 16, seed=2)
    x2 = x.clone()
    hole = x[:, 3:].bool().expand(-1, 3, -1, -1)
    x2[:, :3][hole] = 0.123
    with torch.no_grad():
        assert torch.equal(net(x), net(x2))
        x[:, 3:] = 0
        assert torch.equal(net(x), x[:, :3])


@pytest.mark.parametrize(("h", "w"), [(8, 8), (16, 40), (64, 24)])
def test_any_multiple_of_eight_works(h: int, w: int) -> None:
    with torch.no_grad():
        assert _tiny()(_input(h, w)).shape == (1, 3, h, w)


@pytest.mark.parametrize(("h", "w"), [(10, 16), (16, 12), (7, 7)])
def test_other_sizes_raise_a_clear_error(h: int, w: int) -> None:
    with pytest.raises(ValueError, match="multiples of 8"):
        _tiny()(_input(h, w))


def test_fourier_blocks_see_the_whole_image() -> None:
    """One Fourier block already carries a change in one corner to the opposite corner."""
    block = _tiny("ffc").body[0]
    z = torch.randn(1, 16, 12, 12, generator=torch.Generator().manual_seed(4))
    z2 = z.clone()
    z2[..., 0, 0] += 1.0
    with torch.no_grad():
        d = (block(z) - block(z2))[..., 6:, 6:].abs().max()
    assert d > 1e-4


def test_untrained_network_returns_the_smooth_fill() -> None:
    net = InpaintUNet((8, 8, 16), 1).eval()
    x = _input(32, 40, seed=5)
    with torch.no_grad():
        y = net(x)
    expected = x[:, 3:] * smooth_fill(x[:, :3], x[:, 3:]).clamp(0, 1) + (1 - x[:, 3:]) * x[:, :3]
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=0)


def test_smooth_fill_is_exact_outside_and_interpolates_a_ramp_inside() -> None:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 96), indexing="ij")
    image = torch.stack([xx, yy, 0.3 + 0.4 * xx])[None]
    mask = torch.zeros(1, 1, 64, 96)
    mask[..., 20:40, 30:50] = 1
    poisoned = image + mask * 5.0  # hole content must be ignored
    fill = smooth_fill(poisoned, mask)
    keep = (mask == 0).expand_as(image)
    assert torch.equal(fill[keep], image[keep])
    # a linear ramp is harmonic: the fill reproduces it to within a few grey levels
    assert (fill - image).abs().max() < 0.02
    flat = smooth_fill(torch.full((1, 3, 16, 16), 0.25), (torch.rand(1, 1, 16, 16) > 0.5).float())
    torch.testing.assert_close(flat, torch.full_like(flat, 0.25))


def test_inpaint_image_handles_any_size_and_keeps_the_outside() -> None:
    net = _tiny()
    rng = np.random.default_rng(0)
    img = rng.random((50, 70, 3), dtype=np.float32)
    mask = np.zeros((50, 70), np.float32)
    mask[10:20, 30:45] = 1
    out = inpaint_image(net, img, mask, context=16)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert not np.array_equal(out[mask > 0], img[mask > 0])
    assert np.array_equal(inpaint_image(net, img, np.zeros_like(mask)), img)
    far = np.zeros((300, 300), np.float32)
    far[5:9, 5:9] = far[290:296, 280:290] = 1
    big = rng.random((300, 300, 3), dtype=np.float32)
    out = inpaint_image(net, big, far, context=32)
    assert np.array_equal(out[far == 0], big[far == 0])
    assert (out[far > 0] != big[far > 0]).mean() > 0.9


def test_hole_regions_split_far_apart_holes_and_cover_every_hole_pixel() -> None:
    mask = np.zeros((600, 800), np.float32)
    mask[10:30, 10:40] = 1
    mask[500:540, 700:790] = 1
    boxes = hole_regions(mask, context=64)
    assert len(boxes) == 2
    covered = np.zeros(mask.shape, bool)
    for y0, y1, x0, x1 in boxes:
        assert (y1 - y0) * (x1 - x0) < 0.2 * mask.size
        covered[y0:y1, x0:x1] = True
    assert covered[mask > 0].all()
    dot = np.zeros((100, 100), np.float32)
    dot[50, 50] = 1  # a single pixel still gets a box and is filled
    assert len(hole_regions(dot)) == 1
    near = np.zeros((600, 800), np.float32)
    near[100:110, 100:110] = near[100:110, 160:170] = 1
    assert len(hole_regions(near, context=64)) == 1


def test_flip_averaged_fill_is_the_mean_of_both_passes_and_keeps_known_pixels() -> None:
    from studio.models.descriptor import InpaintModel

    loaded = ARCH.load(_tiny("ffc", blocks=2, seed=4).state_dict())
    rng = np.random.default_rng(5)
    image = rng.random((24, 37, 3), dtype=np.float32)  # odd width: padding is flipped too
    hole = np.zeros((24, 37), np.float32)
    hole[5:15, 3:20] = 1
    plain = InpaintModel(loaded, torch.device("cpu"))
    both = InpaintModel(loaded, torch.device("cpu"), flip_average=True)
    mirrored = plain(image[:, ::-1].copy(), hole[:, ::-1].copy())[:, ::-1]
    out = both(image, hole)
    np.testing.assert_allclose(out, (plain(image, hole) + mirrored) / 2, atol=1e-6)
    np.testing.assert_array_equal(out[hole == 0], image[hole == 0])
    assert not np.allclose(plain(image, hole), mirrored), "the net is not mirror-symmetric"
