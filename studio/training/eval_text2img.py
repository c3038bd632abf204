"""Evaluate ``studio-text2img``: FD of unconditional samples (the empty prompt) against the
pack's validation images, next to the train-vs-val floor at the same sample sizes, and a sheet
of prompts with their results.

FD uses :mod:`studio.training.fid`'s emoji features network. The floor is FD between ``n``
random training images and the validation split, so both numbers carry the same small-sample
bias. The sheet is a grid (one row of ``--per-prompt`` seeds per prompt) and a text file with
the prompts in row order.

    python -m studio.training.eval_text2img checkpoints/studio-text2img.safetensors --n 256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio.models.diffusion_api import DenoiseRequest
from studio.models.text_diffusion import TextDiffusion
from studio.paths import data_cache_dir
from studio.training.fid import DEFAULT_WEIGHTS, features, frechet_distance, load_feature_net

DATA = data_cache_dir() / "captioned"
OUT = data_cache_dir() / "t2i-eval"

SHEET_PROMPTS = (
    "a red apple",
    "a smiling face",
    "a yellow star",
    "a cat face",
    "a dog",
    "a green tree",
    "a house",
    "a red heart",
    "a blue car",
    "the sun",
    "a crescent moon",
    "a cup of coffee",
    "a pizza slice",
    "a rocket",
    "a flower",
    "a fish",
    "a crying face",
    "a bird",
    "a clock",
    "a snowman",
    "a birthday cake",
    "a guitar",
    "a book",
    "fire",
    "a crimson fruit",
    "a happy yellow face with sunglasses",
    "a black and white panda",
    "an orange carrot",
    "a computer",
    "a penguin",
    "a banana",
    "a blue folder icon",
)


def generate(
    backend: TextDiffusion, prompt: str, seeds: range, steps: int, guidance: float, sampler: str
) -> np.ndarray:
    """uint8 [len(seeds), 64, 64, 3] for ``prompt`` (run to the end, previews ignored)."""
    gen = backend.denoise(
        DenoiseRequest(
            prompt=prompt,
            seed=seeds.start,
            steps=steps,
            guidance=guidance,
            sampler=sampler,
            count=len(seeds),
        )
    )
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def grid(images: np.ndarray, cols: int, gap: int = 2) -> np.ndarray:
    """Tile uint8 [N,h,w,3] into rows of ``cols`` on white."""
    n, h, w, _ = images.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = im
    return out


def evaluate(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    backend = TextDiffusion.load(
        args.weights, "cpu", torch.bfloat16 if args.bf16 else torch.float32
    )
    out: dict = {"weights": str(args.weights), "meta_steps": backend.metadata.get("steps")}
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = [
        generate(backend, p, range(0, args.per_prompt), args.steps, args.guidance, args.sampler)
        for p in SHEET_PROMPTS
    ]
    Image.fromarray(grid(np.concatenate(rows), args.per_prompt)).save(
        args.out / f"{args.tag}_sheet.png"
    )
    (args.out / f"{args.tag}_sheet.txt").write_text("\n".join(SHEET_PROMPTS) + "\n")
    out["sheet_seconds"] = time.perf_counter() - t0
    if args.n:
        with np.load(args.data / "val.npz") as z:
            x_va = z["images"]
        with np.load(args.data / "train.npz") as z:
            pick = np.random.default_rng(0).choice(len(z["images"]), args.n, replace=False)
            x_tr = z["images"][np.sort(pick)]
        net = load_feature_net(args.features)
        f_va = features(net, x_va)
        out["n_samples"], out["n_val"] = args.n, len(x_va)
        out["fd_floor_train_val"] = frechet_distance(features(net, x_tr), f_va)
        t0 = time.perf_counter()
        samples = np.concatenate(
            [
                generate(backend, "", range(i, min(i + 64, args.n)), args.steps, 1.0, args.sampler)
                for i in range(0, args.n, 64)
            ]
        )
        out["sample_seconds"] = time.perf_counter() - t0
        out["fd_unconditional"] = frechet_distance(features(net, samples), f_va)
        Image.fromarray(grid(samples[:64], 8)).save(args.out / f"{args.tag}_uncond64.png")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("weights", type=Path)
    ap.add_argument("--tag", default="t2i")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--features", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--n", type=int, default=256, help="unconditional samples for FD (0: none)")
    ap.add_argument("--per-prompt", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--sampler", default="dpm++")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    result = evaluate(args)
    print(json.dumps(result, indent=1))
    (args.out / f"{args.tag}_eval.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
