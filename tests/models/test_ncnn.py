"""ncnn reader: synthetic .param/.bin pairs written from tiny random models must round-trip."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from studio.models.archs.rrdbnet import RRDBNet
from studio.models.archs.srvgg import SRVGGNetCompact
from studio.models.archs.upconv7 import UpConv7
from studio.models.ncnn import (
    ARCHS,
    TAG_FP16,
    NcnnFormatError,
    import_ncnn,
    ncnn_to_state_dict,
    read_ncnn,
)

LRELU02 = "9=2 -23310=1,2.000000e-01"


class _Writer:
    """Minimal ncnn text-graph + weight-file writer (the layout the reader documents)."""

    def __init__(self, fp16: bool = True) -> None:
        self.lines: list[str] = []
        self.blobs: set[str] = set()
        self.data = bytearray()
        self.fp16 = fp16

    def layer(self, typ: str, name: str, bottoms: list[str], tops: list[str], params: str) -> None:
        self.blobs.update(bottoms, tops)
        io = " ".join([*bottoms, *tops])
        self.lines.append(f"{typ} {name} {len(bottoms)} {len(tops)} {io} {params}".strip())

    def conv(self, name: str, bottom: str, top: str, conv: torch.nn.Module, act: str = "") -> None:
        w = conv.weight.detach().numpy()
        deconv = isinstance(conv, torch.nn.ConvTranspose2d)
        if deconv:
            w = w.transpose(1, 0, 2, 3)  # ncnn keeps (out, in, kh, kw)
        pad, stride = conv.padding[0], conv.stride[0]
        p = f"0={w.shape[0]} 1={w.shape[2]} 3={stride} 4={pad} 5=1 6={w.size} {act}"
        self.layer("Deconvolution" if deconv else "Convolution", name, [bottom], [top], p)
        if self.fp16:
            payload = w.astype("<f2").tobytes()
            self.data += struct.pack("<I", TAG_FP16) + payload + b"\0" * (-len(payload) % 4)
        else:
            self.data += struct.pack("<I", 0) + w.astype("<f4").tobytes()
        self.data += conv.bias.detach().numpy().astype("<f4").tobytes()

    def save(self, folder: Path) -> tuple[Path, Path]:
        head = ["7767517", f"{len(self.lines)} {len(self.blobs)}"]
        param, bin_path = folder / "m.param", folder / "m.bin"
        param.write_text("\n".join(head + self.lines) + "\n")
        bin_path.write_bytes(bytes(self.data))
        return param, bin_path


def _random(module: torch.nn.Module, seed: int, fp16: bool = True) -> torch.nn.Module:
    """Random weights; conv kernels rounded to fp16 so an fp16 file holds them exactly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            if fp16 and name.endswith("weight") and p.ndim == 4:
                p.copy_(p.half().float())
    return module.eval()


def write_srvgg(folder: Path, model: SRVGGNetCompact, fp16: bool = True) -> tuple[Path, Path]:
    w = _Writer(fp16)
    w.layer("Input", "in", [], ["data"], "")
    w.layer("Split", "split", ["data"], ["d0", "d1"], "")
    prev = "d0"
    for i, m in enumerate(model.body):
        if isinstance(m, torch.nn.PReLU):
            w.layer("PReLU", f"p{i}", [prev], [f"b{i}"], f"0={m.num_parameters}")
            w.data += m.weight.detach().numpy().astype("<f4").tobytes()
        else:
            w.conv(f"c{i}", prev, f"b{i}", m)
        prev = f"b{i}"
    s = model.scale
    w.layer("PixelShuffle", "ps", [prev], ["sh"], f"0={s}")
    w.layer("Interp", "up", ["d1"], ["base"], f"0=1 1={s:e} 2={s:e}")
    w.layer("BinaryOp", "add", ["sh", "base"], ["output"], "")
    return w.save(folder)


def write_upconv7(folder: Path, model: UpConv7) -> tuple[Path, Path]:
    w = _Writer()
    w.layer("Input", "in", [], ["data"], "0=32 1=32 2=3")
    prev = "data"
    for i in range(0, 12, 2):
        w.conv(f"conv{i}", prev, f"b{i}", model.net[i], "9=2 -23310=1,1.000000e-01")
        prev = f"b{i}"
    w.conv("deconv", prev, "output", model.net[12])
    return w.save(folder)


def write_rrdbnet(folder: Path, model: RRDBNet) -> tuple[Path, Path]:
    """Like the real graph minus its Split layers (the reader does not follow blob topology)."""
    w = _Writer()
    w.layer("Input", "in", [], ["data"], "")
    w.conv("conv_first", "data", "f", model.conv_first)
    x = "f"
    for b, rrdb in enumerate(model.body):
        rrdb_in = x
        for r, rdb in enumerate((rrdb.rdb1, rrdb.rdb2, rrdb.rdb3)):
            feats = [x]
            for c in range(1, 6):
                cat = f"cat{b}{r}{c}"
                w.layer("Concat", cat, list(feats), [cat], "")
                act = LRELU02 if c < 5 else ""
                w.conv(f"conv{b}{r}{c}", cat, f"o{b}{r}{c}", getattr(rdb, f"conv{c}"), act)
                feats.append(f"o{b}{r}{c}")
            w.layer("Eltwise", f"e{b}{r}", [feats[-1], x], [f"e{b}{r}"], "0=1 -23301=2,0.2,1.0")
            x = f"e{b}{r}"
        w.layer("Eltwise", f"rr{b}", [x, rrdb_in], [f"rr{b}"], "0=1 -23301=2,0.2,1.0")
        x = f"rr{b}"
    w.conv("conv_body", x, "body", model.conv_body)
    w.layer("BinaryOp", "skip", ["f", "body"], ["feat"], "")
    w.layer("Interp", "i1", ["feat"], ["u1"], "0=1 1=2.0 2=2.0")
    w.conv("conv_up1", "u1", "c1", model.conv_up1, LRELU02)
    w.layer("Interp", "i2", ["c1"], ["u2"], "0=1 1=2.0 2=2.0")
    w.conv("conv_up2", "u2", "c2", model.conv_up2, LRELU02)
    w.conv("conv_hr", "c2", "hr", model.conv_hr, LRELU02)
    w.conv("conv_last", "hr", "output", model.conv_last)
    return w.save(folder)


def _tiny_models() -> dict[str, torch.nn.Module]:
    return {
        "srvgg": _random(SRVGGNetCompact(3, 3, nf=8, num_conv=3, scale=2), 1),
        "upconv7": _random(UpConv7(3, 3, widths=(4, 4, 8, 8, 8, 16)), 2),
        "rrdbnet": _random(RRDBNet(3, 3, 4, num_feat=8, num_block=2, num_grow_ch=4), 3),
    }


WRITERS = {"srvgg": write_srvgg, "upconv7": write_upconv7, "rrdbnet": write_rrdbnet}


@pytest.mark.parametrize("arch", sorted(WRITERS))
def test_state_dict_round_trips_exactly(tmp_path: Path, arch: str) -> None:
    model = _tiny_models()[arch]
    param, bin_path = WRITERS[arch](tmp_path, model)
    detected, sd, warnings = ncnn_to_state_dict(read_ncnn(param, bin_path))
    assert (detected, warnings) == (arch, [])
    expected = model.state_dict()
    assert set(sd) == set(expected)
    for k, v in expected.items():
        # kernels stored fp16, biases and PReLU slopes fp32 as in the file
        want_dtype = torch.float16 if k.endswith("weight") and v.ndim == 4 else torch.float32
        assert sd[k].dtype == want_dtype, k
        assert torch.equal(sd[k].float(), v), k


def test_fp32_weights_round_trip(tmp_path: Path) -> None:
    model = _random(SRVGGNetCompact(3, 3, nf=4, num_conv=1, scale=2), 4, fp16=False)
    _, sd, _ = ncnn_to_state_dict(read_ncnn(*write_srvgg(tmp_path, model, fp16=False)))
    for k, v in model.state_dict().items():
        assert sd[k].dtype == torch.float32 and torch.equal(sd[k], v), k


@pytest.mark.parametrize("arch", sorted(WRITERS))
def test_import_writes_a_loadable_checkpoint(tmp_path: Path, arch: str) -> None:
    model = _tiny_models()[arch]
    param, bin_path = WRITERS[arch](tmp_path, model)
    out = tmp_path / "out.safetensors"
    summary = import_ncnn(param, bin_path, out, source="unit test")
    assert summary["arch"] == arch
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["arch"] == arch and meta["source"] == "unit test"
    assert meta["scale"] == str(model.scale if arch != "upconv7" else 2)
    loaded = ARCHS[arch].load(load_file(str(out)))
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


def test_import_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    param, bin_path = write_upconv7(tmp_path, _tiny_models()["upconv7"])
    a = import_ncnn(param, bin_path, tmp_path / "a.safetensors", source="s", license="MIT")
    b = import_ncnn(param, bin_path, tmp_path / "b.safetensors", source="s", license="MIT")
    assert a["sha256"] == b["sha256"]
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_truncated_bin_is_reported(tmp_path: Path) -> None:
    param, bin_path = write_upconv7(tmp_path, _tiny_models()["upconv7"])
    bin_path.write_bytes(bin_path.read_bytes()[:-10])
    with pytest.raises(NcnnFormatError, match="truncated"):
        read_ncnn(param, bin_path)


def test_trailing_bytes_are_reported(tmp_path: Path) -> None:
    param, bin_path = write_upconv7(tmp_path, _tiny_models()["upconv7"])
    bin_path.write_bytes(bin_path.read_bytes() + b"\0" * 8)
    with pytest.raises(NcnnFormatError, match="left over"):
        read_ncnn(param, bin_path)


def test_corrupt_tag_is_reported(tmp_path: Path) -> None:
    param, bin_path = write_upconv7(tmp_path, _tiny_models()["upconv7"])
    data = bytearray(bin_path.read_bytes())
    data[0:4] = struct.pack("<I", 0xDEADBEEF)
    bin_path.write_bytes(bytes(data))
    with pytest.raises(NcnnFormatError, match="unknown weight tag 0xDEADBEEF"):
        read_ncnn(param, bin_path)


def test_wrong_arch_or_file_is_reported(tmp_path: Path) -> None:
    param, bin_path = write_srvgg(tmp_path, _tiny_models()["srvgg"])
    layers = read_ncnn(param, bin_path)
    with pytest.raises(NcnnFormatError, match="not an RRDBNet"):
        ncnn_to_state_dict(layers, "rrdbnet")
    with pytest.raises(NcnnFormatError, match="UpConv7 needs"):
        ncnn_to_state_dict(layers, "upconv7")
    bad = tmp_path / "bad.param"
    bad.write_text("hello\n")
    with pytest.raises(NcnnFormatError, match="not a text ncnn"):
        read_ncnn(bad, bin_path)


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    """A conv whose input width disagrees with its place in the dense block."""
    model = _tiny_models()["rrdbnet"]
    model.body[0].rdb1.conv2 = torch.nn.Conv2d(8, 4, 3, 1, 1)  # should see 8 + 4 channels
    param, bin_path = write_rrdbnet(tmp_path, _random(model, 5))
    with pytest.raises(NcnnFormatError, match=r"body\.0\.rdb1\.conv2: in_ch is 8, expected 12"):
        ncnn_to_state_dict(read_ncnn(param, bin_path))


def test_trailing_resize_is_a_warning(tmp_path: Path) -> None:
    """realesr-animevideov3-x2/-x3 are the x4 network followed by a bicubic downscale."""
    param, bin_path = write_srvgg(tmp_path, _tiny_models()["srvgg"])
    text = param.read_text().replace("add 2 1 sh base output", "add 2 1 sh base sum")
    lines = text.splitlines()
    n_layers, n_blobs = map(int, lines[1].split())
    lines[1] = f"{n_layers + 1} {n_blobs + 1}"
    lines.append("Interp down 1 1 sum output 0=3 1=5.000000e-01 2=5.000000e-01")
    param.write_text("\n".join(lines) + "\n")
    arch, _, warnings = ncnn_to_state_dict(read_ncnn(param, bin_path))
    assert arch == "srvgg"
    assert len(warnings) == 1 and "x1 overall" in warnings[0]


def test_fp16_padding_to_four_bytes(tmp_path: Path) -> None:
    """An odd number of fp16 weights is followed by two pad bytes before the fp32 bias."""
    model = _random(SRVGGNetCompact(1, 1, nf=3, num_conv=1, scale=1), 6)
    assert model.body[0].weight.numel() % 2 == 1
    _, sd, _ = ncnn_to_state_dict(read_ncnn(*write_srvgg(tmp_path, model)))
    for k, v in model.state_dict().items():
        assert np.array_equal(sd[k].float().numpy(), v.numpy()), k
