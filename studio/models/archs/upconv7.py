"""waifu2x UpConv7: six unpadded 3x3 convs and one 4x4 stride-2 transposed conv (x2 upscaling).

Written here from the published description of waifu2x (nagadomi, MIT; the ``upconv_7`` models
as distributed by waifu2x-caffe and waifu2x-ncnn-vulkan). Keys are ``net.{0,2,...,12}`` of one
``nn.Sequential`` (even indices hold weights, odd ones are the LeakyReLU(0.1) activations).

Geometry: the convs use no padding, so each trims one pixel per side (6 in all), and the
transposed conv (kernel 4, stride 2, padding 3) maps ``n`` pixels to ``2n - 4``. An input of
``H`` gives ``2(H - 12) - 4 = 2H - 28``: the raw network loses 14 output pixels per side, i.e. 7
input pixels. waifu2x therefore pads its input by 7 pixels each side (edge replication) and the
result is exactly 2x. :class:`UpConv7` does that padding itself, so ``forward`` maps ``H x W`` to
``2H x 2W``; :meth:`UpConv7.forward_unpadded` is the bare network.

Tensor contract: input float RGB NCHW in [0, 1]; output NCHW exactly 2x larger, roughly the same
range (not clamped; callers clamp).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.arch import LoadedModel, StateDict

#: input pixels each side consumed by the unpadded network (see module docstring)
UPCONV7_PAD = 7
#: output channels of the six convs in the published model
UPCONV7_WIDTHS = (16, 32, 64, 128, 128, 256)
_CONV_KEYS = tuple(f"net.{2 * i}" for i in range(6))
_DECONV_KEY = "net.12"


class UpConv7(nn.Module):
    """Edge-replicate pad by 7, six [conv 3x3 valid, LReLU 0.1], ConvTranspose 4x4 s2 p3."""

    def __init__(
        self, in_ch: int = 3, out_ch: int = 3, widths: tuple[int, ...] = UPCONV7_WIDTHS
    ) -> None:
        super().__init__()
        if len(widths) != 6:
            raise ValueError(f"UpConv7 has six convs, got {len(widths)} widths")
        layers: list[nn.Module] = []
        c = in_ch
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, 1, 0), nn.LeakyReLU(0.1)]
            c = w
        layers.append(nn.ConvTranspose2d(c, out_ch, 4, 2, 3))
        self.net = nn.Sequential(*layers)

    def forward_unpadded(self, x: torch.Tensor) -> torch.Tensor:
        """The bare network: ``(N, C, H, W)`` -> ``(N, C_out, 2H - 28, 2W - 28)``, H, W >= 15."""
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = UPCONV7_PAD
        return self.net(F.pad(x, (p, p, p, p), mode="replicate"))


class UpConv7Arch:
    """Registry entry for :class:`UpConv7`."""

    id = "upconv7"
    name = "waifu2x UpConv7"
    license = "MIT"

    def detect(self, state_dict: StateDict) -> bool:
        keys = {f"{k}.weight" for k in (*_CONV_KEYS, _DECONV_KEY)}
        keys |= {f"{k}.bias" for k in (*_CONV_KEYS, _DECONV_KEY)}
        if set(state_dict) != keys:
            return False
        deconv = state_dict[f"{_DECONV_KEY}.weight"]
        convs_ok = all(tuple(state_dict[f"{k}.weight"].shape[2:]) == (3, 3) for k in _CONV_KEYS)
        return convs_ok and deconv.ndim == 4 and tuple(deconv.shape[2:]) == (4, 4)

    def load(self, state_dict: StateDict) -> LoadedModel:
        widths = tuple(int(state_dict[f"{k}.weight"].shape[0]) for k in _CONV_KEYS)
        in_ch = int(state_dict["net.0.weight"].shape[1])
        # ConvTranspose2d weights are (in, out, kh, kw)
        out_ch = int(state_dict[f"{_DECONV_KEY}.weight"].shape[1])
        module = UpConv7(in_ch, out_ch, widths)
        module.load_state_dict(dict(state_dict), strict=True)
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            scale=2,
            in_channels=in_ch,
            out_channels=out_ch,
            size_multiple=1,
            supports_half=True,
            receptive_field=UPCONV7_PAD,
            extra={"widths": widths},
        )
