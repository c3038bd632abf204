"""RRDBNet: the ESRGAN / Real-ESRGAN generator (residual-in-residual dense blocks).

Written here from the published description (Wang et al., ESRGAN 2018; Real-ESRGAN 2021,
BSD-3-Clause). The state-dict keys follow the reference layout (``conv_first``,
``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last``) so that third-party ``.pth``/``.safetensors`` files load unchanged.

The trunk always upsamples x4 (two nearest x2 steps). The x2 and x1 variants first fold the input
with a pixel-unshuffle (factor 2 or 4), which shows as 4x or 16x the image channels in
``conv_first``; their inputs must then be a multiple of 2 or 4 pixels.

Tensor contract: input float RGB NCHW in [0, 1]; output NCHW ``scale`` times larger, roughly the
same range (not clamped; callers clamp).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.arch import LoadedModel, StateDict, count_prefixed, has_keys

#: residual scaling inside every dense block and every RRDB
RESIDUAL_SCALE = 0.2


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the concatenation of the block input and all earlier outputs."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Three dense blocks in series with a scaled residual around them."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """conv_first, RRDBs, conv_body (+ skip), 2 x [nearest x2, conv, LReLU], conv_hr, conv_last.

    ``scale`` 4 feeds the image directly; 2 and 1 pixel-unshuffle it by 2 and 4 first.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, not {scale}")
        self.scale = scale
        self.unshuffle = 4 // scale
        first_in = num_in_ch * self.unshuffle * self.unshuffle
        self.conv_first = nn.Conv2d(first_in, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2):
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


_REQUIRED = (
    "conv_first.weight",
    "body.0.rdb1.conv1.weight",
    "body.0.rdb3.conv5.weight",
    "conv_body.weight",
    "conv_up1.weight",
    "conv_up2.weight",
    "conv_hr.weight",
    "conv_last.weight",
)


class RRDBNetArch:
    """Registry entry for :class:`RRDBNet` (reference key layout only, not the old ESRGAN one)."""

    id = "rrdbnet"
    name = "RRDBNet (ESRGAN / Real-ESRGAN)"
    license = "BSD-3-Clause"

    def detect(self, state_dict: StateDict) -> bool:
        return has_keys(state_dict, *_REQUIRED) and state_dict["conv_first.weight"].ndim == 4

    def load(self, state_dict: StateDict) -> LoadedModel:
        if "conv_up3.weight" in state_dict:
            raise ValueError("RRDBNet with conv_up3 (x8 trunk) is not supported")
        first = state_dict["conv_first.weight"]
        num_feat, first_in = int(first.shape[0]), int(first.shape[1])
        num_grow_ch = int(state_dict["body.0.rdb1.conv1.weight"].shape[0])
        num_block = count_prefixed(state_dict, "body.", ".rdb1.conv1.weight")
        out_ch = int(state_dict["conv_last.weight"].shape[0])
        # conv_first sees the pixel-unshuffled image: in * 1 (x4), in * 4 (x2), in * 16 (x1)
        scale = {out_ch: 4, 4 * out_ch: 2, 16 * out_ch: 1}.get(first_in)
        if scale is None:
            raise ValueError(
                f"RRDBNet conv_first has {first_in} input channels for {out_ch} output channels: "
                "expected 1x (x4), 4x (x2, pixel-unshuffle 2) or 16x (x1, pixel-unshuffle 4)"
            )
        in_ch = first_in // (4 // scale) ** 2
        module = RRDBNet(in_ch, out_ch, scale, num_feat, num_block, num_grow_ch)
        module.load_state_dict(dict(state_dict), strict=True)
        # theoretical LR receptive radius: every LR 3x3 conv adds one pixel (15 per RRDB), the four
        # convs after upsampling add 1.25 more; in practice outputs depend on far less. Measured
        # (centre tile vs untiled, astronaut crop): x4plus-anime (6 blocks) needs 48 px of context
        # for a max error of 0.11/255, x4plus (23 blocks) 64 px for 0.26/255 (48 px gave 2.4/255).
        theoretical = 15 * num_block + 4
        context = min(theoretical, max(48, 41 + num_block))
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            scale=scale,
            in_channels=in_ch,
            out_channels=out_ch,
            size_multiple=4 // scale,
            supports_half=True,
            receptive_field=context,
            extra={
                "num_block": num_block,
                "num_feat": num_feat,
                "num_grow_ch": num_grow_ch,
                "theoretical_receptive_field": theoretical,
            },
        )
