"""InpaintUNet: Studio's compact inpainting network (``studio-inpaint``), our own design.

A U-Net in the spirit of LaMa (Suvorov et al. 2022): the input is folded 2x2 into channels
(pixel-unshuffle) so no convolution runs at full resolution, two strided stages bring it to 1/8
scale, where residual *Fourier blocks* mix a local 3x3 branch with a spectral branch (1x1
convolution over the real/imaginary parts of the 2-D FFT of the features), which gives every
output pixel a receptive field covering the whole input. The decoder upsamples (nearest + 3x3
conv) with additive skips and a pixel-shuffle head. The hole is first given a smooth fill (a
multigrid harmonic interpolation, :func:`smooth_fill`), which the network refines: it sees that
fill and predicts a residual over it (the head starts at zero, so an untrained network returns
the smooth fill). No normalisation layers, so it runs on any
batch size and any resolution. ``block="gated"`` swaps the Fourier blocks for dilated gated
convolutions (DeepFill v2); that variant is kept for comparison (see the model card).

Tensor contract: input float32 NCHW with 4 channels, ``cat([image, mask], 1)``: image RGB in
[0, 1], mask N1HW in {0, 1} (1 = fill; fractional values blend). H and W must be multiples of
``SIZE_MULTIPLE`` (8), otherwise ``ValueError``. Output float32 N3HW in [0, 1]:
``mask * clamp(pred) + (1 - mask) * image``, so pixels outside the hole are the input's, bit for
bit. The network never sees the hole's original pixels (they are replaced inside ``forward``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.models.arch import LoadedModel, StateDict, count_prefixed

SIZE_MULTIPLE = 8
#: Jacobi sweeps per pyramid level of :func:`smooth_fill`
FILL_ITERS = 8
#: context (px, each side) the fill of a hole pixel mostly depends on at full resolution; the
#: Fourier blocks see the whole input, so crops around a hole should keep at least this much
CONTEXT = 128


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class SpectralTransform(nn.Module):
    """1x1 conv to ``cout``, a 1x1 conv on its 2-D real FFT (real/imag stacked), residual, 1x1.

    The FFT runs in float32 whatever the autocast dtype (CPU FFT has no bf16 kernels and its
    precision matters for the inverse transform).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(cin, cout, 1)
        self.freq = nn.Conv2d(2 * cout, 2 * cout, 1)
        self.expand = nn.Conv2d(cout, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.reduce(x), 0.2)
        hh, ww = y.shape[-2:]
        with torch.autocast(y.device.type, enabled=False):
            f = torch.fft.rfft2(y.float(), norm="ortho")
            f = torch.cat([f.real, f.imag], 1)
            f = F.leaky_relu(F.conv2d(f, self.freq.weight.float(), self.freq.bias.float()), 0.2)
            re, im = f.chunk(2, 1)
            g = torch.fft.irfft2(
                torch.complex(re.contiguous(), im.contiguous()), s=(hh, ww), norm="ortho"
            )
        return self.expand(y + g.to(y.dtype))


class FourierBlock(nn.Module):
    """``x + mix(cat(local3x3(x), spectral(x)))``: local and global context in one block."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.local = nn.Conv2d(c, c // 2, 3, 1, 1)
        self.spectral = SpectralTransform(c, c - c // 2)
        self.mix = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        loc = F.leaky_relu(self.local(x), 0.2)
        glob = F.leaky_relu(self.spectral(x), 0.2)
        return x + self.mix(torch.cat([loc, glob], 1))


class GatedBlock(nn.Module):
    """``x + conv1x1(feature * sigmoid(gate))`` with a dilated 3x3 gated convolution."""

    def __init__(self, c: int, dilation: int) -> None:
        super().__init__()
        self.gated = nn.Conv2d(c, 2 * c, 3, 1, dilation, dilation)
        self.mix = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat, gate = self.gated(x).chunk(2, 1)
        return x + self.mix(F.leaky_relu(feat, 0.2) * torch.sigmoid(gate))


class InpaintUNet(nn.Module):
    """Pixel-unshuffle U-Net with widths ``(c1, c2, c3)`` at 1/2, 1/4, 1/8 scale."""

    def __init__(
        self, widths: tuple[int, int, int] = (32, 64, 128), blocks: int = 4, block: str = "ffc"
    ) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.enc1 = nn.Sequential(nn.Conv2d(16, c1, 3, 1, 1), _act(), nn.Conv2d(c1, c1, 3, 1, 1))
        self.enc2 = nn.Sequential(nn.Conv2d(c1, c2, 3, 2, 1), _act(), nn.Conv2d(c2, c2, 3, 1, 1))
        self.enc3 = nn.Conv2d(c2, c3, 3, 2, 1)
        if block == "ffc":
            self.body = nn.ModuleList(FourierBlock(c3) for _ in range(blocks))
        elif block == "gated":
            dil = (1, 2, 4, 8)
            self.gbody = nn.ModuleList(GatedBlock(c3, dil[i % 4]) for i in range(blocks))
        else:
            raise ValueError(f"unknown block type {block!r}")
        self.up2 = nn.Conv2d(c3, c2, 3, 1, 1)
        self.dec2 = nn.Conv2d(c2, c2, 3, 1, 1)
        self.up1 = nn.Conv2d(c2, c1, 3, 1, 1)
        self.dec1 = nn.Conv2d(c1, c1, 3, 1, 1)
        self.head = nn.Conv2d(c1, 12, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Raw RGB prediction (not clamped, not composited) for N3HW image and N1HW mask."""
        h, w = image.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(
                f"InpaintUNet needs H and W multiples of {SIZE_MULTIPLE}, got {h}x{w}; pad first"
            )
        prefill = smooth_fill(image, mask)
        x = F.pixel_unshuffle(torch.cat([prefill, mask], 1), 2)
        e1 = self.enc1(x)
        e2 = self.enc2(F.leaky_relu(e1, 0.2))
        z = self.enc3(F.leaky_relu(e2, 0.2))
        for blk in self.body if hasattr(self, "body") else self.gbody:
            z = blk(z)
        z = F.leaky_relu(z, 0.2)
        d2 = F.leaky_relu(self.up2(F.interpolate(z, scale_factor=2.0, mode="nearest")) + e2, 0.2)
        d2 = F.leaky_relu(self.dec2(d2), 0.2)
        d1 = F.leaky_relu(self.up1(F.interpolate(d2, scale_factor=2.0, mode="nearest")) + e1, 0.2)
        d1 = F.leaky_relu(self.dec1(d1), 0.2)
        # a residual over the smooth fill
        return F.pixel_shuffle(self.head(d1), 2).float() + prefill.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image, mask = x[:, :3], x[:, 3:4]
        pred = self.predict(image, mask).clamp(0.0, 1.0)
        return composite(image, mask, pred)


def _avg4(f: torch.Tensor) -> torch.Tensor:
    """Mean of the four neighbours (edge pixels repeat the border)."""
    p = F.pad(f, (1, 1, 1, 1), mode="replicate")
    return 0.25 * (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:])


def smooth_fill(image: torch.Tensor, mask: torch.Tensor, iters: int = FILL_ITERS) -> torch.Tensor:
    """Fill the hole with a smooth (approximately harmonic) interpolation of its surroundings.

    Push: an image pyramid of ``image * known`` and ``known`` (2x2 means) down to 1 px. Pull: from
    the coarsest level up, upsample the coarser fill, blend it in where the level is not fully
    known, ``fill = mean(image*known) + (1 - mean(known)) * fill``, then relax ``iters`` Jacobi
    sweeps of the same update with the 4-neighbour mean in place of the upsampled fill (a
    cascadic multigrid solve of Laplace's equation with the known pixels as boundary). Hole
    content is ignored; exact outside the hole (where mask is 0). N3HW / N1HW float, N3HW out.
    """
    known = 1.0 - mask
    colours, weights = [image * known], [known]
    while min(colours[-1].shape[-2:]) > 1:
        colours.append(F.avg_pool2d(colours[-1], 2, ceil_mode=True))
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
    fill = colours[-1] / weights[-1].clamp_min(1e-6)
    for c, w in zip(reversed(colours[:-1]), reversed(weights[:-1]), strict=True):
        hole = 1.0 - w
        fill = c + hole * F.interpolate(
            fill, size=c.shape[-2:], mode="bilinear", align_corners=False
        )
        for _ in range(iters):
            fill = c + hole * _avg4(fill)
    return fill


def composite(image: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """``mask * pred + (1 - mask) * image``; exact where ``mask == 0``."""
    image = image.float()
    return torch.where(mask > 0, mask * pred.float() + (1.0 - mask) * image, image)


class InpaintUNetArch:
    """Registry entry for :class:`InpaintUNet` (keys ``enc1.0.weight`` ... ``head.weight``)."""

    id = "inpaint_unet"
    name = "Studio InpaintUNet"
    license = "MIT"

    def detect(self, state_dict: StateDict) -> bool:
        need = ("enc1.0.weight", "enc2.0.weight", "enc3.weight", "up2.weight", "head.weight")
        if not all(k in state_dict for k in need):
            return False
        w = state_dict["enc1.0.weight"]
        return w.ndim == 4 and w.shape[1] == 16 and state_dict["head.weight"].shape[0] == 12

    def load(self, state_dict: StateDict) -> LoadedModel:
        c1 = int(state_dict["enc1.0.weight"].shape[0])
        c2 = int(state_dict["enc2.0.weight"].shape[0])
        c3 = int(state_dict["enc3.weight"].shape[0])
        n_ffc = count_prefixed(state_dict, "body.", ".local.weight")
        n_gated = count_prefixed(state_dict, "gbody.", ".gated.weight")
        block = "ffc" if n_ffc else "gated"
        module = InpaintUNet((c1, c2, c3), n_ffc or n_gated, block)
        module.load_state_dict(dict(state_dict), strict=True)
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            scale=1,
            in_channels=4,
            out_channels=3,
            size_multiple=SIZE_MULTIPLE,
            supports_half=False,
            receptive_field=CONTEXT,
            extra={"block": block, "blocks": n_ffc or n_gated, "widths": (c1, c2, c3)},
        )


def pad_to_multiple(
    x: torch.Tensor, multiple: int = SIZE_MULTIPLE
) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad NCHW bottom/right to a multiple; returns (padded, pad_h, pad_w)."""
    ph, pw = (-x.shape[-2]) % multiple, (-x.shape[-1]) % multiple
    if ph or pw:
        mode = "reflect" if min(x.shape[-2:]) > max(ph, pw) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, ph, pw


def _hole_clusters(mask: np.ndarray, context: int, f: int = 8) -> tuple[np.ndarray, list]:
    """Cluster labels on an ``f``x reduced grid (max-pooled, so no hole pixel is lost) and boxes."""
    hole = mask > 0
    h, w = hole.shape
    hs, ws = -(-h // f), -(-w // f)
    padded = np.zeros((hs * f, ws * f), bool)
    padded[:h, :w] = hole
    small = padded.reshape(hs, f, ws, f).any(axis=(1, 3)).astype(np.uint8)
    r = max(1, -(-context // f))
    grown = cv2.dilate(small, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        boxes.append((y * f, min(h, (y + bh) * f), x * f, min(w, (x + bw) * f)))
    return labels, boxes


def hole_regions(mask: np.ndarray, context: int = CONTEXT) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, y1, x0, x1)`` covering the hole, one per cluster of hole pixels.

    Holes closer than about ``2 * context`` share a box; each box is the cluster's bounding box
    grown by at least ``context`` px each side, clipped to the image (8 px grid).
    """
    return _hole_clusters(mask, context)[1]


@torch.no_grad()
def inpaint_image(
    module: nn.Module, image: np.ndarray, mask: np.ndarray, context: int = CONTEXT
) -> np.ndarray:
    """Fill ``mask`` in an HxWx3 float32 [0, 1] image, running the network only around holes.

    Each box of :func:`hole_regions` is padded to the size multiple and filled on its own; only
    that cluster's hole pixels are written back (boxes may overlap). Returns a new HxWx3 float32
    image equal to ``image`` outside the mask. Studio's engine may tile differently; this is the
    reference path.
    """
    out = np.array(image, dtype=np.float32, copy=True)
    src = out.copy()
    m_all = np.ascontiguousarray(mask, np.float32)
    labels, boxes = _hole_clusters(m_all, context)
    full_labels = np.repeat(np.repeat(labels, 8, 0), 8, 1)
    for i, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        img = torch.from_numpy(src[y0:y1, x0:x1]).permute(2, 0, 1)[None]
        m = torch.from_numpy(m_all[y0:y1, x0:x1].copy())[None, None]
        x, _, _ = pad_to_multiple(torch.cat([img, m], 1))
        res = module(x)[0, :, : y1 - y0, : x1 - x0].permute(1, 2, 0).numpy()
        sel = (m_all[y0:y1, x0:x1] > 0) & (full_labels[y0:y1, x0:x1] == i)
        out[y0:y1, x0:x1][sel] = res[sel]
    return out
