"""Low-resolution / high-resolution training pairs for super-resolution.

Choices (the quality target is PSNR on *bicubic* LR, so bicubic dominates):

* resampling kernel: PIL bicubic 70 %, area (box) 10 %, bilinear 10 %, Lanczos 10 %. PIL's
  downscaling filters are antialiased (support widened by the scale), exactly as the evaluation's
  ``PIL BICUBIC`` LR, so the dominant training LR equals the evaluation LR;
* mild Gaussian blur of the HR before downscaling, 10 %: sigma U(0.2, 0.6) * scale HR pixels
  (camera softness; a wider blur would teach over-sharpening of already sharp images);
* mild Gaussian noise after downscaling, 10 %: sigma U(1, 4) / 255;
* JPEG after downscaling, 10 %: quality U(60, 95) (web images);
  so about half of all pairs are clean bicubic;
* random crop, horizontal/vertical flips and 90-degree rotation of the HR before degrading;
* crops are degraded with a margin of :data:`MARGIN` LR pixels that is cut off afterwards, so the
  resampling at the crop border sees real neighbours, as it does when a whole image is downscaled.

Contract: images are numpy uint8 HxWx3 RGB; LR is ``(H/scale, W/scale, 3)`` uint8.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

MARGIN = 4  # LR pixels degraded around each crop and then discarded

KERNELS = {
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class DegradeConfig:
    """Probabilities and ranges of the degradations (defaults documented in the module)."""

    kernel_probs: tuple[tuple[str, float], ...] = (
        ("bicubic", 0.7),
        ("area", 0.1),
        ("bilinear", 0.1),
        ("lanczos", 0.1),
    )
    p_blur: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 0.6)  # times scale, in HR pixels
    p_noise: float = 0.1
    noise_sigma: tuple[float, float] = (1.0, 4.0)  # in 0..255 units
    p_jpeg: float = 0.1
    jpeg_quality: tuple[int, int] = (60, 95)


CLEAN = DegradeConfig(kernel_probs=(("bicubic", 1.0),), p_blur=0.0, p_noise=0.0, p_jpeg=0.0)


def bicubic_down(hr: np.ndarray, scale: int) -> np.ndarray:
    """PIL bicubic downscale of a uint8 HxWx3 image whose sides are multiples of ``scale``."""
    h, w = hr.shape[:2]
    im = Image.fromarray(hr).resize((w // scale, h // scale), Image.Resampling.BICUBIC)
    return np.asarray(im)


def degrade(
    hr: np.ndarray, scale: int, rng: np.random.Generator, cfg: DegradeConfig = DegradeConfig()
) -> np.ndarray:
    """Degrade a uint8 HxWx3 HR image (sides multiples of ``scale``) to uint8 LR."""
    h, w = hr.shape[:2]
    im = Image.fromarray(hr)
    if rng.random() < cfg.p_blur:
        sigma = rng.uniform(*cfg.blur_sigma) * scale
        im = im.filter(ImageFilter.GaussianBlur(radius=sigma))
    names = [k for k, _ in cfg.kernel_probs]
    probs = np.array([p for _, p in cfg.kernel_probs], dtype=np.float64)
    kernel = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    im = im.resize((w // scale, h // scale), KERNELS[kernel])
    lr = np.asarray(im)
    if rng.random() < cfg.p_noise:
        sigma = rng.uniform(*cfg.noise_sigma)
        noisy = lr.astype(np.float32) + rng.normal(0.0, sigma, lr.shape).astype(np.float32)
        lr = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_jpeg:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        buf = io.BytesIO()
        Image.fromarray(lr).save(buf, format="JPEG", quality=q)
        lr = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return np.ascontiguousarray(lr)


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flips and 90-degree rotation (the 8 symmetries of the square)."""
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5:
        img = img[::-1]
    if rng.random() < 0.5:
        img = img.transpose(1, 0, 2)
    return np.ascontiguousarray(img)


def random_pair(
    hr_image: np.ndarray,
    scale: int,
    patch: int,
    rng: np.random.Generator,
    cfg: DegradeConfig = DegradeConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """One training pair from ``hr_image``: ``(lr (p, p, 3), hr (p*s, p*s, 3))``, p = ``patch``.

    Both uint8. The image must be at least ``(patch + 2 * MARGIN) * scale`` on each side.
    """
    full = (patch + 2 * MARGIN) * scale
    h, w = hr_image.shape[:2]
    if h < full or w < full:
        raise ValueError(f"image {w}x{h} smaller than a {full}px crop")
    y = int(rng.integers(0, (h - full) // scale + 1)) * scale
    x = int(rng.integers(0, (w - full) // scale + 1)) * scale
    crop = augment(hr_image[y : y + full, x : x + full], rng)
    lr = degrade(crop, scale, rng, cfg)[MARGIN : MARGIN + patch, MARGIN : MARGIN + patch]
    m = MARGIN * scale
    hr = crop[m : m + patch * scale, m : m + patch * scale]
    return np.ascontiguousarray(lr), np.ascontiguousarray(hr)


def random_batch(
    images: list[np.ndarray],
    weights: np.ndarray,
    scale: int,
    patch: int,
    batch: int,
    rng: np.random.Generator,
    cfg: DegradeConfig = DegradeConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` pairs from images drawn with probability ``weights``: (B,p,p,3), (B,ps,ps,3)."""
    idx = rng.choice(len(images), size=batch, p=weights)
    pairs = [random_pair(images[i], scale, patch, rng, cfg) for i in idx]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
