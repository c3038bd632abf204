"""A loaded image model placed on a device: numpy tiles in, numpy tiles out.

Tensor contract of ``__call__``: HxWxC float32 in [0, 1] (C = the model's input channels) ->
(H*scale)x(W*scale)xC' float32 clamped to [0, 1]. Padding to the model's size multiple and the
crop back happen here, so runners never do them.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from studio.models.arch import LoadedModel, check_finite_output

log = logging.getLogger(__name__)


def to_padded_nchw(image: np.ndarray, multiple: int, fill: float | None = None) -> torch.Tensor:
    """HxWxC numpy -> 1xCxH'xW' tensor, padded right/bottom up to a multiple of ``multiple``:
    reflected (replicated when too small to reflect), or constant ``fill`` when given."""
    h, w = image.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    multiple = max(1, multiple)
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        if fill is not None:
            return F.pad(x, (0, pad_w, 0, pad_h), value=fill)
        mode = "reflect" if h > pad_h and w > pad_w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x


def padded_size(
    h: int, w: int, multiple: int, minimum: int = 0, square: bool = False
) -> tuple[int, int]:
    """The smallest input size a model accepts that holds ``h x w``: at least ``minimum`` on
    each side, square when asked, rounded up to ``multiple``."""
    th, tw = max(h, minimum), max(w, minimum)
    if square:
        th = tw = max(th, tw)
    multiple = max(1, multiple)
    return th + (-th) % multiple, tw + (-tw) % multiple


def pad_to_nchw(
    image: np.ndarray, size: tuple[int, int], fill: float | None = None
) -> torch.Tensor:
    """HxWxC numpy -> 1xCxH'xW' tensor padded right/bottom to ``size``: mirrored (repeatedly,
    so any amount works) or constant ``fill``."""
    h, w = image.shape[:2]
    pad = ((0, size[0] - h), (0, size[1] - w), (0, 0))
    if fill is None:
        image = np.pad(image, pad, mode="symmetric")
    else:
        image = np.pad(image, pad, mode="constant", constant_values=fill)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]


class ImageModel:
    """Runs a :class:`LoadedModel` on ``device`` with weights and activations in ``dtype``.

    Reduced precision converts the weights once (faster than autocast's per-op casts); the
    output always comes back as float32. On the CPU, NHWC (channels_last) lets oneDNN use its
    blocked convolution kernels.

    ``compiled=True`` runs the module through ``torch.compile`` (inductor, with weight freezing,
    which lets it fold and fuse convolutions with their activations and residual adds): x4plus
    on this CPU 10.4 s -> 7.9 s per 256x256 tile, after ~40 s of compilation per new tile
    shape. So it pays off for batches, not for one-off edits; when compilation fails (no C++
    compiler, an unsupported op) the model falls back to eager mode and says so in the log.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        compiled: bool = False,
    ) -> None:
        self.loaded = loaded
        self.device = device
        self.dtype = dtype
        self.module = loaded.module.to(device=device, dtype=dtype).eval()
        if device.type == "cpu":
            self.module = self.module.to(memory_format=torch.channels_last)
        self._forward = self.module
        if compiled:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            self._forward = torch.compile(self.module, dynamic=False)

    @property
    def compiled(self) -> bool:
        return self._forward is not self.module

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled:
            try:
                return self._forward(x)
            except Exception as exc:  # any compiler failure: run eagerly from now on
                arch = self.loaded.arch_id
                log.warning("torch.compile failed (%s); running %s eagerly", exc, arch)
                self._forward = self.module
        return self.module(x)

    @property
    def scale(self) -> int:
        return self.loaded.scale

    @property
    def name(self) -> str:
        """The architecture's name, for messages."""
        return str(self.loaded.extra.get("architecture") or self.loaded.arch_id)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        h, w = tile.shape[:2]
        x = to_padded_nchw(tile, self.loaded.size_multiple)
        x = x.to(device=self.device, dtype=self.dtype)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        s = self.loaded.scale
        with torch.inference_mode():
            y = self._run(x)[:, :, : h * s, : w * s]
            check_finite_output(y, self.name)
            y = y.float().clamp_(0.0, 1.0)
            return y[0].permute(1, 2, 0).cpu().numpy()


class InpaintModel:
    """Runs an inpainting model: (image HxWx3 float32 [0,1], hole HxW float32 {0,1}) -> HxWx3.

    Our InpaintUNet takes ``cat([image, mask])`` (4 channels); spandrel's LaMa/MAT take
    ``(image, mask)``. Both return the composite, so known pixels come back unchanged. Inputs
    are padded (image mirrored, padding marked known) to the size the model accepts: its size
    multiple, and for fixed-size models such as MAT (square, 512) its minimum and shape; the
    result is cropped back.

    ``flip_average``: also fill the mirrored input and average the two fills (test-time
    augmentation: +0.03 dB for studio-inpaint, at twice the cost). Known pixels stay exact.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        flip_average: bool = False,
    ) -> None:
        self.loaded = loaded
        self.device = device
        self.dtype = dtype
        self.module = loaded.module.to(device=device, dtype=dtype).eval()
        self.two_inputs = loaded.in_channels != 4
        self.flip_average = flip_average

    @property
    def native_side(self) -> int | None:
        """The side of a fixed-size square model (MAT: 512), else None."""
        extra = self.loaded.extra
        return int(extra["min_size"]) if extra.get("square") and extra.get("min_size") else None

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out = self._fill(image, hole)
        if self.flip_average:  # both fills hold the input's known pixels exactly
            mirrored = self._fill(image[:, ::-1], hole[:, ::-1])[:, ::-1]
            out = (out + mirrored) * np.float32(0.5)
        return out

    def _fill(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        extra = self.loaded.extra
        size = padded_size(
            h,
            w,
            self.loaded.size_multiple,
            int(extra.get("min_size") or 0),
            bool(extra.get("square")),
        )
        x = pad_to_nchw(image, size).to(device=self.device, dtype=self.dtype)
        m = pad_to_nchw(hole[:, :, None].astype(np.float32), size, 0.0)
        m = m.to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            y = self.module(x, m) if self.two_inputs else self.module(torch.cat([x, m], 1))
            y = y[:, :3, :h, :w]
            check_finite_output(y, self.loaded.extra.get("architecture") or self.loaded.arch_id)
            y = y.float().clamp_(0.0, 1.0)
            return y[0].permute(1, 2, 0).cpu().numpy()
