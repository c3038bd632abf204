"""Evaluate super-resolution models on the photo validation split.

Protocol: each val image is cropped to a multiple of the scale (HR), the LR is the PIL BICUBIC
downscale of the uint8 HR, the model output is clamped and rounded to uint8, and PSNR / SSIM are
computed on the BT.601 luma Y (studio range, 16..235, as MATLAB ``rgb2ycbcr``) with a fixed
``BORDER`` = 4 px cropped on every side, whatever the scale. SSIM: Wang et al. 2004, 11x11
Gaussian window sigma 1.5, K1 0.01, K2 0.03, L 255, mean over the valid (unpadded) window area.

Any :class:`studio.models.arch.LoadedModel` can be evaluated::

    python -m studio.training.eval_sr --scale 2 checkpoints/studio-photo-x2.safetensors
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from studio.models.arch import LoadedModel
from studio.paths import data_cache_dir
from studio.training.degrade import bicubic_down

BORDER = 4
Upscaler = Callable[[np.ndarray], np.ndarray]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of uint8 HxWx3 RGB, float64 in [16, 235]."""
    x = img.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def psnr_y(a: np.ndarray, b: np.ndarray, border: int = BORDER) -> float:
    """PSNR (dB, peak 255) between the Y channels of two uint8 RGB images of equal size."""
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim_y(a: np.ndarray, b: np.ndarray, border: int = BORDER) -> float:
    """SSIM between the Y channels of two uint8 RGB images of equal size."""
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    win = g @ g.T

    def f(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, win, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mu_a, mu_b = f(ya), f(yb)
    va = f(ya * ya) - mu_a**2
    vb = f(yb * yb) - mu_b**2
    cov = f(ya * yb) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return float(s.mean())


def bicubic_up(lr: np.ndarray, scale: int) -> np.ndarray:
    """PIL bicubic upscale, uint8 in and out."""
    h, w = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.Resampling.BICUBIC))


@torch.no_grad()
def run_module(module: torch.nn.Module, lr: np.ndarray, size_multiple: int = 1) -> np.ndarray:
    """Run an image module on uint8 HxWx3 LR; returns uint8 RGB (clamped, rounded)."""
    h, w = lr.shape[:2]
    x = torch.from_numpy(np.array(lr, copy=True)).permute(2, 0, 1)[None].float() / 255.0
    ph, pw = (-h) % size_multiple, (-w) % size_multiple
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
    y = module(x)
    s = y.shape[-1] // x.shape[-1]
    y = y[..., : h * s, : w * s]
    out = (y.clamp(0, 1) * 255.0).round().to(torch.uint8)[0].permute(1, 2, 0)
    return out.numpy()


def model_upscaler(model: LoadedModel) -> Upscaler:
    """Upscaler from any loaded architecture (eval mode, float32)."""
    module = model.module.eval().float()
    return lambda lr: run_module(module, lr, model.size_multiple)


def load_val(data: Path, split: str = "val", limit: int | None = None) -> list[np.ndarray]:
    """Images of one split of the photo data set, uint8 HxWx3, sorted by name."""
    files = sorted((data / split).glob("*.png"))[:limit]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def evaluate(
    upscalers: dict[str, Upscaler], images: list[np.ndarray], scale: int, border: int = BORDER
) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM (Y) and seconds per image for each upscaler; bicubic is always added."""
    ups = {"bicubic": lambda lr: bicubic_up(lr, scale), **upscalers}
    res: dict[str, dict[str, list[float]]] = {k: {"psnr": [], "ssim": [], "sec": []} for k in ups}
    for img in images:
        h, w = img.shape[:2]
        hr = img[: h - h % scale, : w - w % scale]
        lr = bicubic_down(hr, scale)
        for name, up in ups.items():
            t = time.perf_counter()
            sr = up(lr)
            res[name]["sec"].append(time.perf_counter() - t)
            res[name]["psnr"].append(psnr_y(sr, hr, border))
            res[name]["ssim"].append(ssim_y(sr, hr, border))
    return {
        k: {m: float(np.mean(v)) for m, v in d.items()} | {"n": len(images)} for k, d in res.items()
    }


def registered_archs() -> list:
    """Architecture entries available in ``studio.models.archs`` (optional modules skipped)."""
    found = []
    for mod in ("srvgg", "rrdbnet", "upconv7"):
        try:
            m = importlib.import_module(f"studio.models.archs.{mod}")
        except ImportError:
            continue
        for obj in vars(m).values():
            if isinstance(obj, type) and all(hasattr(obj, a) for a in ("id", "detect", "load")):
                found.append(obj())
    return found


def load_weights(path: str | Path) -> LoadedModel:
    """Load a safetensors checkpoint through whichever registered architecture detects it."""
    sd = load_file(str(path))
    for arch in registered_archs():
        if arch.detect(sd):
            return arch.load(sd)
    raise ValueError(f"no registered architecture recognises {path}")


def markdown_table(results: dict[str, dict[str, float]]) -> str:
    """Results as a markdown table with the gain over bicubic."""
    base = results["bicubic"]
    lines = [
        "| model | PSNR-Y (dB) | gain vs bicubic | SSIM-Y | s/image | images |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['psnr']:.2f} | {r['psnr'] - base['psnr']:+.2f} | {r['ssim']:.4f} "
            f"| {r['sec']:.2f} | {r['n']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("weights", nargs="*", type=Path, help="safetensors checkpoints to compare")
    ap.add_argument("--scale", type=int, required=True)
    ap.add_argument("--data", type=Path, default=data_cache_dir() / "photos")
    ap.add_argument("--limit", type=int, default=None, help="first N val images only")
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    images = load_val(args.data, limit=args.limit)
    ups = {}
    for w in args.weights:
        model = load_weights(w)
        if model.scale != args.scale:
            raise SystemExit(f"{w} is x{model.scale}, not x{args.scale}")
        ups[w.stem] = model_upscaler(model)
    results = evaluate(ups, images, args.scale)
    print(markdown_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
