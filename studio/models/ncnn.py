"""Read ncnn ``.param`` + ``.bin`` models and convert them into our PyTorch architectures.

Format facts (ncnn, Tencent, BSD-3-Clause):

* ``.param`` is text: the magic ``7767517``, then ``layer_count blob_count``, then one line per
  layer: ``type name n_in n_out in_blobs... out_blobs... key=value...``. Keys ``<= -23300`` hold
  arrays (``-23300 - key`` is the real id, the value is ``count,v1,v2,...``).
* ``.bin`` is every layer's weights concatenated in layer order, with no index. A weight blob
  (convolution kernels) starts with a 4-byte tag: ``0x01306B47`` fp16, ``0x00000000`` or
  ``0x0002C056`` fp32 (``0x000D4B38`` int8 and codebook-quantised data are not supported);
  fp16/int8 payloads are padded to 4 bytes. Biases and PReLU slopes are raw fp32 without a tag.
* ncnn stores deconvolution kernels as ``(out, in, kh, kw)``; PyTorch wants ``(in, out, kh, kw)``.

Weights are mapped onto our modules by layer order and checked against the shapes and layer
attributes the architecture implies; any mismatch raises :class:`NcnnFormatError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from studio.atomic_write import check_destination, write_bytes_atomic
from studio.errors import BadWeightsError
from studio.models.arch import LoadedModel
from studio.models.archs.rrdbnet import RRDBNetArch
from studio.models.archs.srvgg import SRVGGArch
from studio.models.archs.upconv7 import UpConv7Arch

PARAM_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0x0002C056
TAG_INT8 = 0x000D4B38

#: layer types that carry no data in the .bin
_WEIGHTLESS = {
    "Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU",
    "Sigmoid", "TanH", "Clip", "Crop", "Noop", "Reshape", "Permute", "Flatten", "UnaryOp",
}  # fmt: skip
ARCHS = {a.id: a for a in (RRDBNetArch(), SRVGGArch(), UpConv7Arch())}

Param = int | float | list[int | float]
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: a real .param is a few kB (RRDBNet x4plus: 33 kB); more is not a .param (e.g. the .bin)
MAX_PARAM_BYTES = 8 << 20
#: more layers than any super-resolution graph has (RRDBNet 23 blocks: about 1000)
MAX_LAYERS = 100_000


class NcnnFormatError(BadWeightsError, ValueError):
    """The .param/.bin pair is malformed or does not match the requested architecture."""


@dataclass
class NcnnLayer:
    """One layer of the graph; ``blobs`` holds its weights as read (fp16 or fp32, flat)."""

    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, Param]
    blobs: dict[str, np.ndarray] = field(default_factory=dict)

    def get(self, key: int, default: Param = 0) -> Param:
        return self.params.get(key, default)

    def get_int(
        self, key: int, default: int = 0, low: int = INT32_MIN, high: int = INT32_MAX
    ) -> int:
        """Parameter ``key`` as an integer in ``[low, high]``; anything else is a format error."""
        value = self.params.get(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or not low <= value <= high:
            raise NcnnFormatError(
                f"ncnn .param: layer {self.name} ({self.type}): parameter {key}={value!r} is "
                f"not an integer from {low} to {high}"
            )
        return value

    def get_float(self, key: int, default: float = 0.0) -> float:
        value = self.params.get(key, default)
        if isinstance(value, list):
            raise NcnnFormatError(
                f"ncnn .param: layer {self.name} ({self.type}): parameter {key} should be one "
                f"number, not a list"
            )
        return float(value)

    def get_list(self, key: int) -> list[float]:
        """Array parameter ``key`` (empty when absent)."""
        value = self.params.get(key, [])
        if not isinstance(value, list):
            raise NcnnFormatError(
                f"ncnn .param: layer {self.name} ({self.type}): parameter {key} should be a list"
            )
        return [float(v) for v in value]


def _number(text: str) -> int | float:
    """ncnn's rule: a value with '.', 'e' or 'E' is a float, else an int; both must be finite
    and fit in 32 bits, as ncnn stores them."""
    if any(c in text for c in ".eE"):
        value = float(text)
        if not math.isfinite(value) or abs(value) > 3.5e38:
            raise ValueError(f"{text} is not a finite 32-bit float")
        return value
    number = int(text)
    if not INT32_MIN <= number <= INT32_MAX:
        raise ValueError(f"{text} does not fit in 32 bits")
    return number


def parse_param(text: str) -> list[NcnnLayer]:
    """Parse the text of a ``.param`` file into layers (no weights yet)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].strip() != str(PARAM_MAGIC):
        raise NcnnFormatError(f"not a text ncnn .param file (first line is not {PARAM_MAGIC})")
    try:
        n_layers = int(lines[1].split()[0])
    except (IndexError, ValueError) as e:
        raise NcnnFormatError("ncnn .param: bad 'layer_count blob_count' line") from e
    if not 0 < n_layers <= MAX_LAYERS:
        raise NcnnFormatError(f"ncnn .param: layer count {n_layers} is not from 1 to {MAX_LAYERS}")
    layers = []
    for ln in lines[2:]:
        tok = ln.split()
        try:
            n_in, n_out = int(tok[2]), int(tok[3])
            if n_in < 0 or n_out < 0 or len(tok) < 4 + n_in + n_out:
                raise ValueError("bad blob counts")
            params: dict[int, Param] = {}
            for item in tok[4 + n_in + n_out :]:
                key_s, value = item.split("=", 1)
                key = int(key_s)
                if key <= -23300:
                    values = [_number(v) for v in value.split(",")]
                    count = values[0]
                    if not isinstance(count, int) or not 0 <= count <= len(values) - 1:
                        raise ValueError(f"array {item!r} does not hold {count} values")
                    params[-23300 - key] = values[1 : 1 + count]
                else:
                    params[key] = _number(value)
        except (IndexError, ValueError) as e:
            shown = ln if len(ln) <= 120 else ln[:117] + "..."
            raise NcnnFormatError(f"ncnn .param: cannot parse line {shown!r} ({e})") from None
        bottoms, tops = tok[4 : 4 + n_in], tok[4 + n_in : 4 + n_in + n_out]
        layers.append(NcnnLayer(tok[0], tok[1], bottoms, tops, params))
    if len(layers) != n_layers:
        raise NcnnFormatError(f"ncnn .param declares {n_layers} layers but lists {len(layers)}")
    return layers


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise NcnnFormatError(
                f"ncnn .bin truncated: {what} needs {n} bytes at offset {self.pos}, "
                f"file has {len(self.data)}"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def raw_fp32(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self.take(4 * count, what), dtype="<f4").copy()

    def tagged(self, count: int, what: str) -> np.ndarray:
        (tag,) = struct.unpack("<I", self.take(4, f"{what} tag"))
        if tag == TAG_FP16:
            raw = self.take((2 * count + 3) // 4 * 4, what)
            return np.frombuffer(raw[: 2 * count], dtype="<f2").copy()
        if tag in (0, TAG_FP32):
            return self.raw_fp32(count, what)
        if tag == TAG_INT8:
            raise NcnnFormatError(f"{what}: int8-quantised ncnn weights are not supported")
        raise NcnnFormatError(
            f"{what}: unknown weight tag 0x{tag:08X} at offset {self.pos - 4} "
            "(codebook-quantised weights or a .bin that does not match the .param)"
        )


def read_bin(layers: list[NcnnLayer], data: bytes) -> None:
    """Fill ``layer.blobs`` from the bytes of the ``.bin``; every byte must be accounted for."""
    r = _Reader(data)
    for layer in layers:
        what = f"layer {layer.name} ({layer.type})"
        if layer.type in ("Convolution", "Deconvolution"):
            if layer.type == "Convolution" and layer.get_int(8):
                raise NcnnFormatError(f"{what}: int8 convolution is not supported")
            layer.blobs["weight"] = r.tagged(layer.get_int(6, low=1), f"{what} weight")
            if layer.get_int(5):
                layer.blobs["bias"] = r.raw_fp32(layer.get_int(0, low=1), f"{what} bias")
        elif layer.type == "PReLU":
            layer.blobs["slope"] = r.raw_fp32(layer.get_int(0, 1, low=1), f"{what} slope")
        elif layer.type not in _WEIGHTLESS:
            raise NcnnFormatError(f"{what}: unsupported layer type, cannot locate its weights")
    if r.pos != len(data):
        raise NcnnFormatError(
            f"ncnn .bin has {len(data) - r.pos} bytes left over after the last layer "
            "(the .bin does not match the .param)"
        )


def read_ncnn(param_path: str | Path, bin_path: str | Path) -> list[NcnnLayer]:
    """Layers of a ``.param``/``.bin`` pair with their weights."""
    param_path = Path(param_path)
    if param_path.stat().st_size > MAX_PARAM_BYTES:
        raise NcnnFormatError(
            f"{param_path}: {param_path.stat().st_size:,} bytes is too large for an ncnn .param "
            "(a text file of a few kB; is it the .bin?)"
        )
    try:
        text = param_path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise NcnnFormatError(
            f"{param_path}: not a text ncnn .param file (binary data; a binary .param.bin "
            "is not supported)"
        ) from None
    layers = parse_param(text)
    read_bin(layers, Path(bin_path).read_bytes())
    return layers


# ---------------------------------------------------------------- conversion


@dataclass(frozen=True)
class _Conv:
    layer: NcnnLayer
    out_ch: int
    in_ch: int
    kernel: int
    stride: int
    pad: int
    act: int  # ncnn activation_type: 0 none, 1 relu, 2 leaky relu, 3 clip, 4 sigmoid, ...
    slope: float | None

    def tensors(self) -> dict[str, torch.Tensor]:
        w = self.layer.blobs["weight"].reshape(self.out_ch, self.in_ch, self.kernel, self.kernel)
        if self.layer.type == "Deconvolution":
            w = w.transpose(1, 0, 2, 3)
        out = {"weight": torch.from_numpy(np.ascontiguousarray(w))}
        if "bias" in self.layer.blobs:
            out["bias"] = torch.from_numpy(self.layer.blobs["bias"])
        return out


def _conv(layer: NcnnLayer) -> _Conv:
    what = f"layer {layer.name}"
    out_ch, kw = layer.get_int(0, low=1), layer.get_int(1, low=1)
    kh = layer.get_int(11, kw, low=1)
    pad_l = layer.get_int(4)
    pad_t = layer.get_int(14, pad_l)
    pads = {pad_l, pad_t, layer.get_int(15, pad_l), layer.get_int(16, pad_t)}
    if min(pads) < 0:
        raise NcnnFormatError(f"{what}: automatic ('same') padding is not supported")
    strides = {layer.get_int(3, 1, low=1), layer.get_int(13, layer.get_int(3, 1), low=1)}
    dil = {layer.get_int(2, 1), layer.get_int(12, layer.get_int(2, 1))}
    if kh != kw or len(pads) != 1 or len(strides) != 1 or dil != {1}:
        raise NcnnFormatError(f"{what}: only square, symmetric, undilated kernels are supported")
    if layer.type == "Convolution" and layer.get_int(7, 1) != 1:
        raise NcnnFormatError(f"{what}: grouped convolution is not supported")
    n = layer.blobs["weight"].size
    if n != layer.get_int(6) or n % (out_ch * kw * kw):
        raise NcnnFormatError(f"{what}: weight size {n} is not a multiple of {out_ch}x{kw}x{kw}")
    if "bias" in layer.blobs and layer.blobs["bias"].size != out_ch:
        raise NcnnFormatError(f"{what}: {layer.blobs['bias'].size} biases for {out_ch} outputs")
    act_params = layer.get_list(10)
    slope = act_params[0] if act_params else None
    in_ch = n // (out_ch * kw * kw)
    return _Conv(layer, out_ch, in_ch, kw, strides.pop(), pads.pop(), layer.get_int(9), slope)


def _expect(conv: _Conv, name: str, **want: object) -> None:
    for attr, value in want.items():
        got = getattr(conv, attr)
        if attr == "slope" and value is not None and got is not None:
            ok = abs(got - float(value)) < 1e-6
        else:
            ok = got == value
        if not ok:
            raise NcnnFormatError(
                f"ncnn layer {conv.layer.name} mapped to {name}: {attr} is {got}, expected {value}"
            )


def _of_type(layers: list[NcnnLayer], *types: str) -> list[NcnnLayer]:
    return [ly for ly in layers if ly.type in types]


def _rrdbnet(layers: list[NcnnLayer]) -> tuple[dict[str, torch.Tensor], list[str]]:
    if _of_type(layers, "Deconvolution", "PReLU"):
        raise NcnnFormatError("graph has Deconvolution/PReLU layers: not an RRDBNet")
    convs = [_conv(ly) for ly in _of_type(layers, "Convolution")]
    nb, rem = divmod(len(convs) - 6, 15)
    if rem or nb < 1:
        raise NcnnFormatError(f"RRDBNet needs 6 + 15 * num_block convs, graph has {len(convs)}")
    nf, gc = convs[0].out_ch, convs[1].out_ch
    names = ["conv_first"]
    names += [f"body.{b}.rdb{r}.conv{c}" for b in range(nb) for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    sd: dict[str, torch.Tensor] = {}
    for name, cv in zip(names, convs, strict=True):
        _expect(cv, name, kernel=3, stride=1, pad=1)
        if name.startswith("body."):
            c = int(name[-1])
            _expect(cv, name, in_ch=nf + (c - 1) * gc, out_ch=gc if c < 5 else nf)
            lrelu = c < 5
        elif name == "conv_first":
            lrelu = False
        else:
            _expect(cv, name, in_ch=nf)
            if name != "conv_last":
                _expect(cv, name, out_ch=nf)
            lrelu = name in ("conv_up1", "conv_up2", "conv_hr")
        _expect(cv, name, act=2 if lrelu else 0, slope=0.2 if lrelu else None)
        sd.update({f"{name}.{k}": v for k, v in cv.tensors().items()})
    interps = _of_type(layers, "Interp")
    if [(ly.get(0), ly.get(1), ly.get(2)) for ly in interps] != [(1, 2.0, 2.0)] * 2:
        raise NcnnFormatError("RRDBNet graph should have exactly two nearest x2 Interp layers")
    for ly in _of_type(layers, "Eltwise"):
        if ly.get(0) != 1 or [round(v, 6) for v in ly.get_list(1)] != [0.2, 1.0]:
            raise NcnnFormatError(f"layer {ly.name}: expected a 0.2-scaled residual sum")
    return sd, []


def _srvgg(layers: list[NcnnLayer]) -> tuple[dict[str, torch.Tensor], list[str]]:
    seq = [ly for ly in layers if ly.blobs]
    if len(seq) < 3 or len(seq) % 2 == 0:
        raise NcnnFormatError("SRVGGNetCompact needs conv, (PReLU, conv) * n")
    sd: dict[str, torch.Tensor] = {}
    nf = None
    for i, ly in enumerate(seq):
        want = "Convolution" if i % 2 == 0 else "PReLU"
        if ly.type != want:
            raise NcnnFormatError(f"layer {ly.name}: {ly.type} where SRVGG expects {want}")
        if want == "PReLU":
            if ly.blobs["slope"].size != nf:
                raise NcnnFormatError(f"layer {ly.name}: {ly.blobs['slope'].size} slopes, not {nf}")
            sd[f"body.{i}.weight"] = torch.from_numpy(ly.blobs["slope"])
            continue
        cv = _conv(ly)
        _expect(cv, f"body.{i}", kernel=3, stride=1, pad=1, act=0)
        if i > 0:
            _expect(cv, f"body.{i}", in_ch=nf)
        if i < len(seq) - 1:
            nf = nf or cv.out_ch
            _expect(cv, f"body.{i}", out_ch=nf)
        sd.update({f"body.{i}.{k}": v for k, v in cv.tensors().items()})
    shuffles = _of_type(layers, "PixelShuffle")
    if len(shuffles) != 1:
        raise NcnnFormatError("SRVGG graph should have exactly one PixelShuffle")
    scale = shuffles[0].get_int(0, 1, low=1, high=16)
    if seq[-1].get_int(0, low=1) % (scale * scale):
        raise NcnnFormatError(
            f"layer {seq[-1].name}: {seq[-1].get_int(0)} outputs cannot be pixel-shuffled x{scale}"
        )
    warnings = []
    interps = [(ly.get(0), ly.get_float(1, 1.0)) for ly in _of_type(layers, "Interp")]
    if not interps or interps[0] != (1, float(scale)):
        raise NcnnFormatError(f"SRVGG graph should add a nearest x{scale} Interp of the input")
    if len(interps) > 1:
        factor = interps[-1][1] * scale
        warnings.append(
            f"the graph resizes the x{scale} network output by {interps[-1][1]:g} at the end "
            f"(x{factor:g} overall); imported the x{scale} network alone"
        )
    return sd, warnings


def _upconv7(layers: list[NcnnLayer]) -> tuple[dict[str, torch.Tensor], list[str]]:
    seq = [ly for ly in layers if ly.blobs]
    if [ly.type for ly in seq] != ["Convolution"] * 6 + ["Deconvolution"]:
        raise NcnnFormatError("UpConv7 needs six Convolution layers then one Deconvolution")
    sd: dict[str, torch.Tensor] = {}
    prev = None
    for i, ly in enumerate(seq):
        cv, name = _conv(ly), f"net.{2 * i}"
        if prev is not None:
            _expect(cv, name, in_ch=prev)
        if i < 6:
            _expect(cv, name, kernel=3, stride=1, pad=0, act=2, slope=0.1)
        else:
            _expect(cv, name, kernel=4, stride=2, pad=3, act=0)
        if "bias" not in ly.blobs:
            raise NcnnFormatError(f"layer {ly.name}: UpConv7 layers have a bias")
        prev = cv.out_ch
        sd.update({f"{name}.{k}": v for k, v in cv.tensors().items()})
    return sd, []


_CONVERTERS = {"rrdbnet": _rrdbnet, "srvgg": _srvgg, "upconv7": _upconv7}


def detect_arch(layers: list[NcnnLayer]) -> str:
    """Architecture id implied by the graph's layer types."""
    types = {ly.type for ly in layers}
    if "Deconvolution" in types and len(_of_type(layers, "Convolution")) == 6:
        return "upconv7"
    if {"PReLU", "PixelShuffle"} <= types:
        return "srvgg"
    if {"Concat", "Eltwise", "Interp"} <= types and "Deconvolution" not in types:
        return "rrdbnet"
    raise NcnnFormatError(f"cannot tell the architecture from layer types {sorted(types)}")


def ncnn_to_state_dict(
    layers: list[NcnnLayer], arch: str | None = None
) -> tuple[str, dict[str, torch.Tensor], list[str]]:
    """``(arch_id, state_dict, warnings)``; tensors keep the file's dtype (fp16 or fp32)."""
    arch = arch or detect_arch(layers)
    if arch not in _CONVERTERS:
        raise NcnnFormatError(f"unknown architecture {arch!r}; known: {sorted(_CONVERTERS)}")
    sd, warnings = _CONVERTERS[arch](layers)
    return arch, sd, warnings


def _canonical(blob: bytes) -> bytes:
    """Sort the safetensors header so that converting the same files always gives the same bytes.

    safetensors writes metadata from a hash map (random key order). Tensor offsets are explicit,
    so only the header changes; it stays space-padded to 8 bytes as the format requires.
    """
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.dumps(json.loads(blob[8 : 8 + n]), sort_keys=True, separators=(",", ":"))
    raw = header.encode() + b" " * (-len(header.encode()) % 8)
    return struct.pack("<Q", len(raw)) + raw + blob[8 + n :]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_ncnn(
    param_path: str | Path,
    bin_path: str | Path,
    out_path: str | Path,
    arch: str | None = None,
    *,
    source: str | None = None,
    license: str | None = None,
) -> dict:
    """Convert an ncnn model to a ``.safetensors`` file loadable by our architecture registry.

    The state dict is checked by building the model with the architecture's ``load`` (strict).
    Metadata: ``arch``, ``scale``, ``source`` (default: the .param file name), ``license``
    (default: the architecture's) and the sha256 of both source files. Returns a summary dict.
    """
    param_path, bin_path, out_path = Path(param_path), Path(bin_path), Path(out_path)
    check_destination(out_path)  # before any work
    layers = read_ncnn(param_path, bin_path)
    arch_id, sd, warnings = ncnn_to_state_dict(layers, arch)
    entry = ARCHS[arch_id]
    if not entry.detect(sd):
        raise NcnnFormatError(f"converted state dict is not recognised by {arch_id}.detect")
    try:
        loaded: LoadedModel = entry.load(sd)
    except (ValueError, RuntimeError) as exc:  # shapes that pass the mapping but not the module
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        raise NcnnFormatError(f"the weights do not build a {arch_id} model: {detail}") from None
    metadata = {
        "arch": arch_id,
        "scale": str(loaded.scale),
        "source": source or param_path.name,
        "license": license or entry.license,
        "converted_from": "ncnn",
        "source_param_sha256": _sha256(param_path),
        "source_bin_sha256": _sha256(bin_path),
    }
    blob = save({k: v.contiguous() for k, v in sd.items()}, metadata=metadata)
    write_bytes_atomic(out_path, _canonical(blob))
    return {
        "arch": arch_id,
        "scale": loaded.scale,
        "in_channels": loaded.in_channels,
        "out_channels": loaded.out_channels,
        "params": sum(int(v.numel()) for v in sd.values()),
        "tensors": len(sd),
        "dtypes": sorted({str(v.dtype).removeprefix("torch.") for v in sd.values()}),
        "extra": loaded.extra,
        "out_path": str(out_path),
        "bytes": out_path.stat().st_size,
        "sha256": _sha256(out_path),
        "metadata": metadata,
        "warnings": warnings,
    }
