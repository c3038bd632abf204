"""Compare inpainting methods on the photo validation split, measured inside the hole.

Protocol (deterministic):

* samples: from each val image (sorted by name), ``per_image`` crops of ``size`` x ``size`` px
  at positions drawn by ``numpy.random.default_rng([seed, image_index])``; each crop gets a
  mask with seed ``1000 * image_index + crop_index``: ``--masks strokes`` is
  :func:`studio.training.masks.eval_mask` (thin strokes + small blobs, 15% +- 2% coverage),
  ``--masks objects`` is :func:`studio.training.masks.object_mask` (one object-sized blob,
  20%..35%);
* every method fills the crop and the result is rounded to uint8 RGB (what Studio would show);
* PSNR inside the mask: MSE over the hole pixels and the three RGB channels (0..255), then
  ``10 log10(255^2 / MSE)``, per sample; the table reports the mean over samples;
* SSIM inside the mask: the SSIM map (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5,
  K1 0.01, K2 0.03, L 255, reflect-padded borders) of each RGB channel over the whole crop,
  averaged over channels, then averaged over the hole pixels; mean over samples;
* texture ratio inside the mask: the standard deviation of the Laplacian (4-neighbour) of the
  luma (BT.601) over the hole eroded by 2 px, fill over ground truth, per sample; mean over
  samples. A flat smudge scores near 0, real texture near 1 (over 1: too much).

Methods: OpenCV Telea and Navier-Stokes (``cv2.inpaint``, radius ``--radius``), PatchMatch
(:func:`studio.models.patchmatch.patchmatch_inpaint`, when that module is importable) and any
number of InpaintUNet checkpoints; ``--hybrid`` also scores Studio's ``studio-inpaint-hybrid`` and
``auto`` fills built on the (single) checkpoint::

    python -m studio.training.eval_inpaint checkpoints/studio-inpaint.safetensors \\
        --examples $STUDIO_CACHE/inpaint_examples.png
    python -m studio.training.eval_inpaint checkpoints/studio-inpaint.safetensors --flip-average \\
        --hybrid --masks objects --no-ns
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Callable, Collection
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from studio.models.arch import LoadedModel
from studio.models.archs.inpaint_unet import SIZE_MULTIPLE, InpaintUNetArch
from studio.models.descriptor import InpaintModel
from studio.paths import data_cache_dir
from studio.pixels import quantize, to_unit
from studio.training.masks import eval_mask, object_mask

#: (image HxWx3 uint8 RGB, mask HxW float32 {0,1}) -> filled uint8 RGB
Filler = Callable[[np.ndarray, np.ndarray], np.ndarray]
Sample = tuple[str, np.ndarray, np.ndarray]


MASKS = {"strokes": eval_mask, "objects": object_mask}


def load_samples(
    data: Path,
    split: str = "val",
    size: int = 256,
    per_image: int = 4,
    seed: int = 0,
    masks: str = "strokes",
) -> list[Sample]:
    """Deterministic ``(name, crop uint8 HxWx3, mask float32 HxW)`` evaluation samples;
    ``masks`` is ``strokes`` or ``objects`` (see the module docstring)."""
    make_mask = MASKS[masks]
    out = []
    for i, f in enumerate(sorted((data / split).glob("*.png"))):
        img = np.asarray(Image.open(f).convert("RGB"))
        h, w = img.shape[:2]
        if min(h, w) < size:
            continue
        rng = np.random.default_rng([seed, i])
        for j in range(per_image):
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            crop = np.ascontiguousarray(img[y : y + size, x : x + size])
            out.append((f"{f.stem}@{y},{x}", crop, make_mask(size, size, 1000 * i + j)))
    return out


def psnr_masked(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the pixels where ``mask > 0``, all RGB channels."""
    sel = mask > 0
    d = a[sel].astype(np.float64) - b[sel].astype(np.float64)
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two uint8 HxW(x3) images, averaged over channels; float64 HxW."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def f(v: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(v, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = f(x), f(y)
    vx, vy, cov = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(axis=2) if s.ndim == 3 else s


def ssim_masked(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """SSIM map averaged over the pixels where ``mask > 0``."""
    return float(ssim_map(a, b)[mask > 0].mean())


def texture_ratio(out: np.ndarray, gt: np.ndarray, mask: np.ndarray, erode: int = 2) -> float:
    """Std of the luma's Laplacian inside the hole (eroded by ``erode`` px), fill over truth."""
    inner = mask > 0
    if erode:
        kernel = np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)
        inner = cv2.erode(inner.astype(np.uint8), kernel) > 0
    if not inner.any():
        inner = mask > 0
    luma = np.array([0.299, 0.587, 0.114])

    def spread(img: np.ndarray) -> float:
        lap = cv2.Laplacian(img.astype(np.float64) @ luma, cv2.CV_64F, ksize=1)
        return float(lap[inner].std())

    return spread(out) / max(spread(gt), 1e-9)


def cv2_filler(method: int, radius: int) -> Filler:
    """``cv2.inpaint`` on uint8 (RGB converted to BGR and back, never leaking BGR)."""

    def fill(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        res = cv2.inpaint(bgr, (mask > 0).astype(np.uint8) * 255, radius, method)
        return cv2.cvtColor(res, cv2.COLOR_BGR2RGB)

    return fill


def to_uint8(x: np.ndarray) -> np.ndarray:
    return quantize(x, np.uint8)


def patchmatch_filler() -> Filler | None:
    """PatchMatch filler when ``studio.models.patchmatch`` exists (else None: the hook)."""
    try:
        pm = importlib.import_module("studio.models.patchmatch")
    except ImportError:
        return None
    fn = getattr(pm, "patchmatch_inpaint", None)
    if fn is None:
        return None

    def fill(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return to_uint8(fn(to_unit(img), mask, seed=0))

    return fill


def module_filler(module: torch.nn.Module, flip_average: bool = False) -> Filler:
    """Filler from an InpaintUNet-style module (4-channel input, composited output), run
    through the engine's own :class:`InpaintModel` wrapper, so what is scored is what Studio
    runs; ``flip_average`` as in the shipped method."""
    loaded = LoadedModel(
        module=module, arch_id="inpaint_unet", in_channels=4, size_multiple=SIZE_MULTIPLE
    )
    model = InpaintModel(loaded, torch.device("cpu"), flip_average=flip_average)

    def fill(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = to_uint8(model(to_unit(img), mask))
        out[mask <= 0] = img[mask <= 0]  # exact already; this only guards the rounding
        return out

    return fill


def default_fillers(radius: int = 5) -> dict[str, Filler]:
    """Telea, Navier-Stokes and (when present) PatchMatch."""
    fillers = {
        f"telea-r{radius}": cv2_filler(cv2.INPAINT_TELEA, radius),
        f"ns-r{radius}": cv2_filler(cv2.INPAINT_NS, radius),
    }
    pm = patchmatch_filler()
    if pm is not None:
        fillers["patchmatch"] = pm
    return fillers


def evaluate(
    fillers: dict[str, Filler], samples: list[Sample], keep: Collection[int] = ()
) -> tuple[dict[str, dict[str, float]], list[dict[str, np.ndarray]]]:
    """Mean in-mask PSNR / SSIM and seconds per sample; also the fills of samples ``keep``."""
    res = {k: {"psnr": [], "ssim": [], "texture": [], "sec": []} for k in fillers}
    kept = []
    for i, (_name, gt, mask) in enumerate(samples):
        outs = {}
        for name, fill in fillers.items():
            t = time.perf_counter()
            out = fill(gt, mask)
            res[name]["sec"].append(time.perf_counter() - t)
            res[name]["psnr"].append(psnr_masked(out, gt, mask))
            res[name]["ssim"].append(ssim_masked(out, gt, mask))
            res[name]["texture"].append(texture_ratio(out, gt, mask))
            outs[name] = out
        if i in keep:
            kept.append(outs | {"gt": gt, "mask": mask})
    summary = {
        k: {m: float(np.mean(v)) for m, v in d.items()} | {"n": len(samples)}
        for k, d in res.items()
    }
    return summary, kept


def markdown_table(results: dict[str, dict[str, float]], base: str | None = None) -> str:
    """Results as a markdown table; gains relative to ``base`` (default: the first method)."""
    base = base or next(iter(results))
    ref = results[base]["psnr"]
    lines = [
        f"| method | PSNR in hole (dB) | vs {base} | SSIM in hole | texture ratio | s/sample "
        "| samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['psnr']:.2f} | {r['psnr'] - ref:+.2f} | {r['ssim']:.4f} "
            f"| {r['texture']:.2f} | {r['sec']:.3f} | {r['n']} |"
        )
    return "\n".join(lines)


def examples_picture(kept: list[dict[str, np.ndarray]], names: list[str], path: Path) -> None:
    """Rows of [input with hole (magenta), each method, ground truth], labelled, as PNG."""
    rows = []
    for k in kept:
        hole = k["gt"].copy()
        hole[k["mask"] > 0] = (255, 0, 255)
        tiles = [hole, *(k[n] for n in names), k["gt"]]
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0))) for t in tiles], 1))
    grid = np.concatenate(rows, 0)
    band = np.full((24, grid.shape[1], 3), 255, np.uint8)
    tile_w = kept[0]["gt"].shape[1] + 4
    for i, label in enumerate(["input", *names, "ground truth"]):
        cv2.putText(band, label, (i * tile_w + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([band, grid], 0)).save(path)


def hybrid_fillers(module: torch.nn.Module, seed: int = 0) -> dict[str, Filler]:
    """Studio's ``studio-inpaint-hybrid`` and ``auto`` fills (the engine's own fillers) built
    on ``module``: a single-pass network for the hybrid, the flip-averaged one as ``auto``'s
    network, as the engine loads them."""
    from studio.engine.inpaint_choice import auto_filler, hybrid_filler

    loaded = LoadedModel(
        module=module, arch_id="inpaint_unet", in_channels=4, size_multiple=SIZE_MULTIPLE
    )
    quick = InpaintModel(loaded, torch.device("cpu"))
    network = InpaintModel(loaded, torch.device("cpu"), flip_average=True)

    def wrap(fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Filler:
        def run(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
            out = to_uint8(fill(to_unit(img), mask))
            out[mask <= 0] = img[mask <= 0]
            return out

        return run

    return {
        "studio-inpaint-hybrid": wrap(hybrid_filler(quick, seed)),
        "auto": wrap(auto_filler(network, quick, seed)),
    }


def load_inpaint_model(path: Path) -> torch.nn.Module:
    """An InpaintUNet checkpoint (safetensors), eval mode, float32."""
    sd = load_file(str(path))
    arch = InpaintUNetArch()
    if not arch.detect(sd):
        raise ValueError(f"{path} is not an InpaintUNet checkpoint")
    return arch.load(sd).module.float().eval()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("weights", nargs="*", type=Path, help="InpaintUNet safetensors checkpoints")
    ap.add_argument("--data", type=Path, default=data_cache_dir() / "photos")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--per-image", type=int, default=4)
    ap.add_argument("--radius", type=int, default=5, help="cv2.inpaint radius")
    ap.add_argument("--no-patchmatch", action="store_true")
    ap.add_argument("--no-ns", action="store_true", help="leave out Navier-Stokes")
    ap.add_argument("--masks", choices=sorted(MASKS), default="strokes")
    ap.add_argument("--hybrid", action="store_true", help="also score the hybrid and auto")
    ap.add_argument("--examples", type=Path, default=None, help="side-by-side PNG of fills")
    ap.add_argument("--n-examples", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--flip-average",
        action="store_true",
        help="also score each checkpoint with the mirrored-fill average (the shipped method)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    samples = load_samples(args.data, size=args.size, per_image=args.per_image, masks=args.masks)
    fillers = default_fillers(args.radius)
    if args.no_ns:
        fillers.pop(f"ns-r{args.radius}", None)
    if args.no_patchmatch:
        fillers.pop("patchmatch", None)
    elif "patchmatch" not in fillers:
        print("PatchMatch: studio.models.patchmatch.patchmatch_inpaint not found; skipped")
    for w in args.weights:
        name = "studio-inpaint" if len(args.weights) == 1 else w.stem
        module = load_inpaint_model(w)
        fillers[name] = module_filler(module)
        if args.flip_average:
            fillers[f"{name} + flip average"] = module_filler(module, flip_average=True)
    if args.hybrid:
        if len(args.weights) != 1:
            ap.error("--hybrid needs exactly one checkpoint")
        fillers |= hybrid_fillers(load_inpaint_model(args.weights[0]))
    # pictured samples: the first crop of the first ``n_examples`` images
    keep = set(range(0, args.n_examples * args.per_image, args.per_image)) if args.examples else ()
    results, kept = evaluate(fillers, samples, keep=keep)
    print(markdown_table(results))
    if args.examples and kept:
        examples_picture(kept, list(fillers), args.examples)
        print(f"examples: {args.examples}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
