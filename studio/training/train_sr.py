"""Train a compact SRVGGNetCompact super-resolution model on the photo data set (CPU).

L1 loss, Adam, linear warm-up then cosine decay to ``lr_min`` over ``--steps``. Training HR images
are held in RAM; LR/HR patch pairs are cut and degraded on the fly (see :mod:`degrade`).

Resumable: full state (model, optimiser, step, numpy/torch RNG, config) is written atomically to
``RUNS/<name>/state.pt`` every ``--save-minutes`` and on SIGTERM/SIGINT, and loaded automatically
(``torch.load(weights_only=True)``). ``--init W.safetensors`` warm-starts from weights only. Each
save also exports the weights as safetensors (``RUNS/<name>/model.safetensors`` and ``--export``).

    python -m studio.training.train_sr --name photo-x2 --scale 2 --steps 8000 \
        --export checkpoints/studio-photo-x2.safetensors
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio.models.archs.srvgg import SRVGGNetCompact
from studio.paths import data_cache_dir
from studio.training.degrade import MARGIN, DegradeConfig, random_batch
from studio.training.eval_sr import evaluate, load_val, run_module
from studio.training.run import Meter, Run, add_run_args, loss_line, lr_at, set_lr
from studio.training.run import export_weights as export_weights  # re-exported for callers

STATE_KEYS_CFG = ("scale", "nf", "num_conv")


def load_images(folder: Path, min_side: int) -> list[np.ndarray]:
    """uint8 HxWx3 images of a folder, those at least ``min_side`` on both sides."""
    out = []
    for f in sorted(folder.glob("*.png")):
        arr = np.asarray(Image.open(f).convert("RGB"))
        if min(arr.shape[:2]) >= min_side:
            out.append(arr)
    return out


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """(B,H,W,3) uint8 -> (B,3,H,W) float32 in [0,1], channels-last memory (faster on CPU)."""
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--scale", type=int, required=True)
    ap.add_argument("--nf", type=int, default=32)
    ap.add_argument("--num-conv", type=int, default=8)
    ap.add_argument("--patch", type=int, default=48, help="LR patch side")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=12000, help="total steps (cosine length)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lr-min", type=float, default=1e-6)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--eval-limit", type=int, default=None, help="val images used in training")
    add_run_args(
        ap,
        data=data_cache_dir() / "photos",
        save_minutes=5.0,
        log_every=100,
        eval_every=1000,
        bf16_help="bf16 autocast (slower on this CPU)",
    )
    return ap


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final state's summary (step, last val results)."""
    run = Run.start(args)
    log = run.log
    cfg = {k: getattr(args, k) for k in ("scale", "nf", "num_conv", "patch", "batch", "steps")}
    cfg |= {"lr": args.lr, "lr_min": args.lr_min, "warmup": args.warmup, "bf16": args.bf16}
    torch.manual_seed(args.seed)
    model = SRVGGNetCompact(3, 3, args.nf, args.num_conv, args.scale)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(args.seed)
    step, wall, history = run.resume_one(cfg, STATE_KEYS_CFG, model, opt, rng, args.init)
    model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    log(f"config {json.dumps(cfg)} params={params}")

    min_side = (args.patch + 2 * MARGIN) * args.scale
    images = load_images(args.data / "train", min_side)
    weights = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.float64)
    weights /= weights.sum()
    val = load_val(args.data, limit=args.eval_limit) if args.eval_every else []
    log(f"{len(images)} train images ({weights.size}), {len(val)} val images")
    degrade_cfg = DegradeConfig()

    run.catch_signals()

    def checkpoint() -> None:
        state = {"model": model.state_dict(), "optim": opt.state_dict()}
        meta = {"arch": "SRVGGNetCompact", "scale": args.scale, "steps": step, "nf": args.nf}
        meta |= {"num_conv": args.num_conv, "wall_minutes": f"{wall / 60:.1f}"}
        run.save(state | run.progress(step, wall, rng, cfg, history), model, meta, args.export)

    def run_eval() -> None:
        model.eval()
        res = evaluate({"model": lambda lr: run_module(model, lr)}, val, args.scale)
        model.train()
        gain = res["model"]["psnr"] - res["bicubic"]["psnr"]
        history.append({"step": step, "psnr": res["model"]["psnr"], "gain": gain})
        log(
            f"eval step {step}: PSNR-Y {res['model']['psnr']:.3f} (bicubic "
            f"{res['bicubic']['psnr']:.3f}, gain {gain:+.3f}) SSIM {res['model']['ssim']:.4f}"
        )

    eval_fn = run_eval if args.eval_every and val else None
    run.start_clock()
    meter = Meter(2)  # loss, seconds spent making batches
    model.train()
    while step < args.steps and not run.stop:
        set_lr(lr_at(step, args.steps, args.lr, args.lr_min, args.warmup), opt)
        t0 = time.time()
        lr_np, hr_np = random_batch(
            images, weights, args.scale, args.patch, args.batch, rng, degrade_cfg
        )
        x, y = to_tensor(lr_np), to_tensor(hr_np)
        t_data = time.time() - t0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = model(x)
        loss = torch.nn.functional.l1_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        meter.add(float(loss.detach()), t_data)
        if meter.due(step, args.log_every, args.steps):
            sums, n, dt = meter.lap()
            wall += dt
            log(loss_line(step, sums, n, dt, opt.param_groups[0]["lr"]))
        if run.tick(step, eval_fn, checkpoint):
            break
    wall += meter.elapsed()
    run.finish(step, history, eval_fn, checkpoint)
    return {"step": step, "history": history, "params": params}


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
