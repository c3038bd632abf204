"""Super-resolution architectures: detection, hyperparameter inference, geometry, checkpoints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from studio.models.archs.rrdbnet import RRDBNet, RRDBNetArch
from studio.models.archs.srvgg import SRVGGArch, SRVGGNetCompact
from studio.models.archs.upconv7 import UpConv7, UpConv7Arch

ARCHS = {"rrdbnet": RRDBNetArch(), "srvgg": SRVGGArch(), "upconv7": UpConv7Arch()}
CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
COMMITTED = [
    ("realesrgan-x4plus", "rrdbnet", 4),
    ("realesrgan-x4plus-anime", "rrdbnet", 4),
    ("realesr-animevideov3-x4", "srvgg", 4),
    *[
        (f"waifu2x-{kind}-x2-noise{n}", "upconv7", 2)
        for kind in ("photo", "anime")
        for n in ("none", "0", "1", "2", "3")
    ],
]


def _randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights with biases and PReLU slopes far from their init constants."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.1 if p.ndim > 1 else 0.05))
    return module.eval()


def _tiny(arch: str, **kw: int) -> torch.nn.Module:
    if arch == "rrdbnet":
        args = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4, "scale": 4} | kw
        return _randomise(RRDBNet(3, 3, **args), 1)
    if arch == "srvgg":
        return _randomise(SRVGGNetCompact(3, 3, nf=8, num_conv=3, scale=kw.get("scale", 2)), 2)
    return _randomise(UpConv7(3, 3, widths=(4, 4, 8, 8, 8, 16)), 3)


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_detect_picks_only_the_right_arch(arch: str) -> None:
    sd = _tiny(arch).state_dict()
    assert {a for a, entry in ARCHS.items() if entry.detect(sd)} == {arch}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_load_reproduces_outputs_exactly(arch: str) -> None:
    original = _tiny(arch)
    loaded = ARCHS[arch].load(original.state_dict())
    assert loaded.arch_id == arch
    x = _image(13, 17)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), original(x))


@pytest.mark.parametrize(("scale", "first_in"), [(4, 3), (2, 12), (1, 48)])
def test_rrdbnet_infers_hyperparameters_and_sizes(scale: int, first_in: int) -> None:
    model = _tiny("rrdbnet", num_block=3, scale=scale)
    sd = model.state_dict()
    assert sd["conv_first.weight"].shape[1] == first_in
    loaded = RRDBNetArch().load(sd)
    assert (loaded.scale, loaded.in_channels, loaded.out_channels) == (scale, 3, 3)
    assert loaded.size_multiple == 4 // scale
    assert loaded.extra | {"theoretical_receptive_field": 0} == {
        "num_block": 3,
        "num_feat": 8,
        "num_grow_ch": 4,
        "theoretical_receptive_field": 0,
    }
    with torch.no_grad():
        y = loaded.module(_image(16, 12))
    assert y.shape == (1, 3, 16 * scale, 12 * scale)


def test_rrdbnet_rejects_unknown_input_folding() -> None:
    sd = dict(_tiny("rrdbnet").state_dict())
    sd["conv_first.weight"] = torch.zeros(8, 5, 3, 3)
    with pytest.raises(ValueError, match="input channels"):
        RRDBNetArch().load(sd)
    sd["conv_up3.weight"] = torch.zeros(8, 8, 3, 3)
    with pytest.raises(ValueError, match="conv_up3"):
        RRDBNetArch().load(sd)


def test_srvgg_infers_scale_and_depth() -> None:
    loaded = SRVGGArch().load(_tiny("srvgg", scale=3).state_dict())
    assert loaded.scale == 3
    assert sum(isinstance(m, torch.nn.Conv2d) for m in loaded.module.body) == 5
    with torch.no_grad():
        assert loaded.module(_image(7, 9)).shape == (1, 3, 21, 27)


@pytest.mark.parametrize(("h", "w"), [(1, 1), (13, 17), (32, 20)])
def test_upconv7_output_is_exactly_twice_the_input(h: int, w: int) -> None:
    loaded = UpConv7Arch().load(_tiny("upconv7").state_dict())
    assert loaded.scale == 2
    assert loaded.extra["widths"] == (4, 4, 8, 8, 8, 16)
    with torch.no_grad():
        assert loaded.module(_image(h, w)).shape == (1, 3, 2 * h, 2 * w)


def test_upconv7_padding_is_centred() -> None:
    """Bare network loses 14 output px a side; a crop's output matches the full image's interior."""
    model = _tiny("upconv7")
    x = _image(40, 36)
    with torch.no_grad():
        assert model.forward_unpadded(x).shape == (1, 3, 2 * 40 - 28, 2 * 36 - 28)
        full = model(x)
        part = model(x[:, :, 10:30, 8:28])
    # output pixels further than 7 input pixels from the crop edge see no padding
    torch.testing.assert_close(part[..., 14:-14, 14:-14], full[..., 34:46, 30:42])


@pytest.mark.parametrize(("name", "arch", "scale"), COMMITTED)
def test_committed_checkpoint_upsamples(name: str, arch: str, scale: int) -> None:
    path = CHECKPOINTS / f"{name}.safetensors"
    sd = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["arch"] == arch and meta["scale"] == str(scale)
    assert {a for a, entry in ARCHS.items() if entry.detect(sd)} == {arch}
    loaded = ARCHS[arch].load(sd)
    assert loaded.scale == scale
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    x = torch.stack([0.2 + 0.6 * xx, 0.2 + 0.6 * yy, 0.5 + 0.3 * xx * yy])[None]
    with torch.no_grad():
        y = loaded.module(x)
    assert y.shape == (1, 3, 16 * scale, 16 * scale)
    assert float(y.min()) > -0.1 and float(y.max()) < 1.1

    def err(out: torch.Tensor) -> float:
        """Mean |area-downscaled output - input| away from the border."""
        return float((F.avg_pool2d(out, scale) - x)[..., 2:-2, 2:-2].abs().mean())

    # a gradient keeps its low frequencies (measured 0.002-0.048; garbage or swapped channels >0.1)
    assert err(y) < 0.06
    if arch == "upconv7":
        # our own padding must not shift the image: a centred blob stays centred
        # (measured within 0.02 output px; padding one input pixel off moves it by 2)
        c = torch.arange(16) - 7.5
        blob = 0.2 + 0.6 * torch.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / 12.5)
        with torch.no_grad():
            w = loaded.module(blob.expand(1, 3, 16, 16)).mean(1)[0]
        w = w - w.min()
        pos = torch.arange(32, dtype=torch.float32)
        cy, cx = (float((w.sum(d) * pos).sum() / w.sum()) for d in (1, 0))
        assert abs(cy - 15.5) < 0.1 and abs(cx - 15.5) < 0.1


def test_sha256sums_match_committed_checkpoints() -> None:
    lines = (CHECKPOINTS / "SHA256SUMS").read_text().splitlines()
    sums = dict(reversed(line.split(maxsplit=1)) for line in lines if line.strip())
    files = {p.name for p in CHECKPOINTS.iterdir() if p.suffix in (".safetensors", ".onnx")}
    assert set(sums) == files
    assert {f"{n}.safetensors" for n, _, _ in COMMITTED} <= files
    for fname, digest in sums.items():
        assert hashlib.sha256((CHECKPOINTS / fname).read_bytes()).hexdigest() == digest
