"""Evaluate a generator checkpoint: Fréchet distance, speed, a 64-sample grid and a strip.

FD is computed on :mod:`studio.training.fid`'s features between ``n`` seeded samples
(seeds ``0 .. n-1``; ``n`` defaults to the size of the train split, so the comparison with the
floor FD(train, val) uses the same sample sizes) and the validation split, for each truncation
asked for. For a VAE it also reports the validation reconstruction PSNR. Speed: images per
second for a batch of 16, decoded as one batch and one image at a time (the engine's way), after
a warm-up, best of ``--reps``.

    python -m studio.training.eval_gen checkpoints/studio-emoji-gan.safetensors --tag gan
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio.models import generate as gen
from studio.paths import data_cache_dir
from studio.training.emoji import load_split
from studio.training.fid import DEFAULT_WEIGHTS, features, frechet_distance, load_feature_net
from studio.training.train_vae import DATA, batch_tensor, psnr

OUT = data_cache_dir() / "gen"


def speed(model: torch.nn.Module, reps: int) -> dict:
    seeds = list(range(16))
    gen.sample(model, seeds)  # warm-up
    batched, single = [], []
    for _ in range(reps):
        t = time.perf_counter()
        gen.sample(model, seeds)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        for s in seeds:
            gen.sample(model, [s])
        single.append(time.perf_counter() - t)
    return {
        "threads": torch.get_num_threads(),
        "batch16_img_per_s": 16 / min(batched),
        "one_at_a_time_img_per_s": 16 / min(single),
    }


def evaluate(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    loaded = gen.load_generator(args.weights)
    model, kind = loaded.module, loaded.extra["kind"]
    x_tr, _ = load_split(args.data, "train")
    x_va, _ = load_split(args.data, "val")
    net = load_feature_net(args.features)
    f_va = features(net, x_va)
    n = args.n or len(x_tr)
    out: dict = {"weights": str(args.weights), "kind": kind, "n_samples": n, "n_val": len(x_va)}
    out["fd_val_train_floor"] = frechet_distance(features(net, x_tr), f_va)
    for t in args.truncation:
        images = np.concatenate(
            [gen.sample(model, range(i, min(i + 256, n)), t) for i in range(0, n, 256)]
        )
        out[f"fd_val_t{t:g}"] = frechet_distance(features(net, images), f_va)
    if kind == "vae":
        with torch.inference_mode():
            scores = [
                psnr(model(x), x)
                for x in (
                    batch_tensor(x_va, np.arange(i, min(i + 128, len(x_va))))
                    for i in range(0, len(x_va), 128)
                )
            ]
        out["val_recon_psnr"] = float(np.mean(scores))
    out["speed"] = speed(model, args.reps)
    args.out.mkdir(parents=True, exist_ok=True)
    for t in args.truncation:
        grid = gen.make_grid(gen.sample(model, range(64), t), cols=8)
        Image.fromarray(grid).save(args.out / f"{args.tag}_grid64_t{t:g}.png")
    strips = [gen.interpolate(model, a, b, 10) for a, b in ((0, 1), (2, 3), (4, 5))]
    rows = [gen.make_grid(s, cols=10) for s in strips]
    gap = np.full((gen.GRID_GAP, rows[0].shape[1], 3), 255, np.uint8)
    strip = np.concatenate([rows[0], gap, rows[1], gap, rows[2]])
    Image.fromarray(strip).save(args.out / f"{args.tag}_interp.png")
    if kind == "vae":
        picks = np.linspace(0, len(x_va) - 1, 8).astype(int)
        recon = [gen.variations(model, x_va[i], 0.0, 0, 1)[0] for i in picks]
        pairs = gen.make_grid(np.stack([*x_va[picks], *recon]), cols=8)
        Image.fromarray(pairs).save(args.out / f"{args.tag}_recon.png")
        var = gen.variations(model, x_va[picks[1]], args.strength, 0, 8)
        row = gen.make_grid(np.stack([x_va[picks[1]], *var]), cols=9)
        Image.fromarray(row).save(args.out / f"{args.tag}_variations.png")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("weights", type=Path)
    ap.add_argument("--tag", required=True, help="file name prefix of the rendered images")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--features", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--n", type=int, default=0, help="samples for FD (0: train split size)")
    ap.add_argument("--truncation", type=float, nargs="+", default=[1.0, 0.8])
    ap.add_argument("--strength", type=float, default=0.5, help="VAE variations strip")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    result = evaluate(args)
    print(json.dumps(result, indent=1))
    (args.out / f"{args.tag}_eval.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
