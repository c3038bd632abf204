"""Sampling from Studio's generators: seeds, batches, interpolation, variations and grids.

A *generator* is a :class:`~studio.models.archs.vae.ConvVAE` (sampled through its decoder) or a
:class:`~studio.models.archs.gan.Generator`; both expose ``z_dim``, ``from_noise(eps)`` (standard
normal noise -> latent: the identity for the GAN, the fitted prior ``loc + L eps`` for the VAE)
and ``decode(z)``.

Determinism: the noise of seed ``s`` is ``torch.randn(1, Z)`` drawn from
``torch.Generator(device="cpu").manual_seed(s)`` and only then moved to the model's device, so a
seed names the same latent on every machine. Neither network has batch statistics, so an image
does not depend on the other images of its batch (bit-exactness across batch sizes is still up to
the backend's kernels; the engine task decodes one image at a time).

``truncation`` multiplies the noise before it becomes a latent (a temperature): 1 samples the
training distribution, lower values trade variety for more typical, cleaner images.

Tensor contract: latents float32 (N, Z); images leave this module as uint8 (N, S, S, 3) RGB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio import pixels
from studio.errors import BadInputError, BadWeightsError
from studio.models.arch import LoadedModel, check_finite_output
from studio.models.archs.gan import GANArch
from studio.models.archs.vae import ConvVAE, VAEArch
from studio.models.loading import load_weights

GRID_GAP = 2  # white pixels between the cells of a grid
GENERATOR_ARCHS = (VAEArch.id, GANArch.id)


def as_generator(loaded: LoadedModel, name: str) -> LoadedModel:
    """``loaded`` when it is a VAE or GAN generator; a clear error naming ``name`` otherwise."""
    if loaded.arch_id not in GENERATOR_ARCHS:
        raise BadWeightsError(f"{name}: not a VAE or GAN generator Studio knows")
    return loaded


def load_generator(path: str | Path, expected_sha256: str | None = None) -> LoadedModel:
    """A VAE or GAN generator from a weight file (``extra`` has kind, z_dim and size), built by
    the one architecture list; ``expected_sha256`` is checked first when given."""
    return as_generator(load_weights(path, expected_sha256), Path(path).name)


def noise(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of ``seed``: float32 (1, Z) standard normal on the CPU."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(1, z_dim, generator=gen, dtype=torch.float32)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (keeps Gaussian latents at a typical norm); exact at t=0 and 1."""
    if t <= 0.0:
        return a.clone()
    if t >= 1.0:
        return b.clone()
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((an * bn).sum(1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:  # (anti)parallel: fall back to a straight line
        return (1.0 - t) * a + t * b
    return (torch.sin((1.0 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.inference_mode()
def to_latent(model: torch.nn.Module, eps: torch.Tensor) -> torch.Tensor:
    """Noise (N, Z) on the CPU -> the model's latents (N, Z) on the CPU."""
    device = next(model.parameters()).device
    return model.from_noise(eps.to(device)).float().cpu()


def sample_latents(
    model: torch.nn.Module, seeds: Sequence[int], truncation: float = 1.0
) -> torch.Tensor:
    """(N, Z): one latent per seed, its noise scaled by ``truncation``."""
    eps = torch.cat([noise(s, model.z_dim) for s in seeds]) * truncation
    return torch.cat([to_latent(model, e[None]) for e in eps])


def interpolation_latents(
    model: torch.nn.Module, seed_a: int, seed_b: int, n: int, truncation: float = 1.0
) -> torch.Tensor:
    """(n, Z): ``n >= 2`` latents from seed_a's to seed_b's (a great circle in noise space)."""
    if n < 2:
        raise BadInputError("an interpolation needs at least 2 images")
    a, b = noise(seed_a, model.z_dim), noise(seed_b, model.z_dim)
    eps = torch.cat([slerp(a, b, i / (n - 1)) for i in range(n)]) * truncation
    return torch.cat([to_latent(model, e[None]) for e in eps])


def prepare_image(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8/uint16 HxWx3(4) -> float32 (1,3,size,size) in [0,1]: alpha over white, Lanczos."""
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise BadInputError(f"expected an RGB or RGBA image, got shape {image.shape}")
    x = pixels.to_unit(image)
    if x.shape[2] == 4:
        x = x[:, :, :3] * x[:, :, 3:] + (1.0 - x[:, :, 3:])
    h, w = x.shape[:2]
    side = max(h, w)  # pad to a square with white, centred, so nothing is distorted
    square = np.ones((side, side, 3), np.float32)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = x
    channels = [
        np.asarray(Image.fromarray(square[:, :, c]).resize((size, size), Image.LANCZOS))
        for c in range(3)
    ]
    small = np.clip(np.stack(channels, axis=2), 0.0, 1.0)
    return torch.from_numpy(small).permute(2, 0, 1)[None].contiguous()


@torch.inference_mode()
def variation_latents(
    vae: ConvVAE, image: np.ndarray, seeds: Sequence[int], strength: float
) -> torch.Tensor:
    """(N, Z): the posterior mean of ``image`` plus ``strength`` x each seed's prior deviation.

    The deviation is ``from_noise(eps) - from_noise(0)``, shaped like the spread of the training
    set's latents: ``strength`` 0 gives the VAE's reconstruction, about 0.3-0.5 keeps the subject
    and changes details, 1 moves as far as two unrelated emoji are apart.
    """
    device = next(vae.parameters()).device
    mu, _ = vae.encode(prepare_image(image, vae.image_size).to(device))
    mu = mu.float().cpu()
    origin = to_latent(vae, torch.zeros(1, vae.z_dim))
    return torch.cat(
        [mu + strength * (to_latent(vae, noise(s, vae.z_dim)) - origin) for s in seeds]
    )


@torch.inference_mode()
def decode(model: torch.nn.Module, z: torch.Tensor) -> np.ndarray:
    """uint8 (N, S, S, 3) images of latents ``z`` (moved to the model's device)."""
    device = next(model.parameters()).device
    x = model.decode(z.to(device))
    check_finite_output(x, "the generator")
    return pixels.quantize(x.float().permute(0, 2, 3, 1).cpu().numpy(), np.uint8)


def sample(model: torch.nn.Module, seeds: Sequence[int], truncation: float = 1.0) -> np.ndarray:
    """uint8 (N, S, S, 3): one image per seed."""
    return decode(model, sample_latents(model, seeds, truncation))


def interpolate(
    model: torch.nn.Module, seed_a: int, seed_b: int, n: int, truncation: float = 1.0
) -> np.ndarray:
    """uint8 (n, S, S, 3) from seed_a's image to seed_b's (the ends equal theirs)."""
    return decode(model, interpolation_latents(model, seed_a, seed_b, n, truncation))


def variations(vae: ConvVAE, image: np.ndarray, strength: float, seed: int, n: int) -> np.ndarray:
    """uint8 (n, S, S, 3) variations of ``image`` (seeds ``seed .. seed+n-1``)."""
    return decode(vae, variation_latents(vae, image, range(seed, seed + n), strength))


def grid_shape(count: int, mode: str = "samples") -> tuple[int, int]:
    """(rows, cols): a strip for interpolation, otherwise the squarest grid holding ``count``."""
    if mode == "interpolate":
        return 1, count
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def cell_origin(index: int, cols: int, cell: int, gap: int = GRID_GAP) -> tuple[int, int]:
    """(x, y) of cell ``index`` in a grid of ``cols`` columns of ``cell``-pixel cells."""
    return (index % cols) * (cell + gap), (index // cols) * (cell + gap)


def grid_size(rows: int, cols: int, cell: int, gap: int = GRID_GAP) -> tuple[int, int]:
    """(width, height) of the grid image."""
    return cols * cell + (cols - 1) * gap, rows * cell + (rows - 1) * gap


def make_grid(images: np.ndarray, cols: int, gap: int = GRID_GAP) -> np.ndarray:
    """uint8 (N,S,S,3) -> one uint8 image, row-major, white gaps and empty cells."""
    n, s = len(images), images.shape[1]
    rows = math.ceil(n / cols)
    w, h = grid_size(rows, cols, s, gap)
    out = np.full((h, w, 3), 255, np.uint8)
    for i, im in enumerate(images):
        x, y = cell_origin(i, cols, s, gap)
        out[y : y + s, x : x + s] = im
    return out
