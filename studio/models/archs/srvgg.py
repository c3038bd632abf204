"""SRVGGNetCompact: a plain stack of 3x3 convolutions with PReLU and a pixel-shuffle tail.

The architecture of Real-ESRGAN's ``realesr-animevideov3`` (BSD-3-Clause, Xintao Wang et al.) and of
our own ``studio-photo-x2``/``-x4``. Written here from the published description; the state-dict key
layout (``body.{i}.weight``) matches the reference so converted and third-party weights load as is.

Tensor contract: input float RGB NCHW in [0, 1]; output NCHW ``scale`` times larger, same range
(not clamped; callers clamp).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.arch import LoadedModel, StateDict


class SRVGGNetCompact(nn.Module):
    """conv(in->nf) PReLU, ``num_conv`` x [conv(nf->nf) PReLU], conv(nf->out*s*s), pixel shuffle.

    The output adds the nearest-neighbour upsampled input, so the body learns a residual.
    """

    def __init__(
        self, in_ch: int = 3, out_ch: int = 3, nf: int = 64, num_conv: int = 16, scale: int = 4
    ) -> None:
        super().__init__()
        self.scale = scale
        self.out_ch = out_ch
        layers: list[nn.Module] = [nn.Conv2d(in_ch, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        layers.append(nn.Conv2d(nf, out_ch * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        base = F.interpolate(x[:, : self.out_ch], scale_factor=self.scale, mode="nearest")
        return out + base


class SRVGGArch:
    """Registry entry for :class:`SRVGGNetCompact`."""

    id = "srvgg"
    name = "SRVGGNetCompact"
    license = "BSD-3-Clause"

    def detect(self, state_dict: StateDict) -> bool:
        keys = set(state_dict)
        if "body.0.weight" not in keys or "body.1.weight" not in keys:
            return False
        if any(not k.startswith("body.") for k in keys):
            return False
        return state_dict["body.0.weight"].ndim == 4 and state_dict["body.1.weight"].ndim == 1

    def load(self, state_dict: StateDict) -> LoadedModel:
        indices = sorted({int(k.split(".")[1]) for k in state_dict})
        last = indices[-1]
        first_w = state_dict["body.0.weight"]
        nf, in_ch = int(first_w.shape[0]), int(first_w.shape[1])
        # body = conv, prelu, (conv, prelu) * num_conv, conv  -> last index = 2 * num_conv + 2
        num_conv = (last - 2) // 2
        out_total = int(state_dict[f"body.{last}.weight"].shape[0])
        out_ch = 3 if out_total % 3 == 0 and in_ch == 3 else in_ch
        scale = round((out_total / out_ch) ** 0.5)
        if scale * scale * out_ch != out_total:
            raise ValueError(f"SRVGG tail has {out_total} channels: not out_ch * scale^2")
        module = SRVGGNetCompact(in_ch, out_ch, nf, num_conv, scale)
        module.load_state_dict(dict(state_dict), strict=True)
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            scale=scale,
            in_channels=in_ch,
            out_channels=out_ch,
            size_multiple=1,
            supports_half=True,
            receptive_field=num_conv + 2,
        )
