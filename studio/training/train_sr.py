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
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from studio.models.archs.srvgg import SRVGGNetCompact
from studio.training.degrade import MARGIN, DegradeConfig, random_batch
from studio.training.eval_sr import evaluate, load_val, run_module

STATE_KEYS_CFG = ("scale", "nf", "num_conv")


def load_images(folder: Path, min_side: int) -> list[np.ndarray]:
    """uint8 HxWx3 images of a folder, those at least ``min_side`` on both sides."""
    out = []
    for f in sorted(folder.glob("*.png")):
        arr = np.asarray(Image.open(f).convert("RGB"))
        if min(arr.shape[:2]) >= min_side:
            out.append(arr)
    return out


def lr_at(step: int, total: int, lr: float, lr_min: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine from ``lr`` to ``lr_min`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t))


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """(B,H,W,3) uint8 -> (B,3,H,W) float32 in [0,1], channels-last memory (faster on CPU)."""
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last)


def export_weights(model: torch.nn.Module, path: Path, meta: dict) -> None:
    """Write the state dict (SRVGGNetCompact key layout) as safetensors, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous().float().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    tmp.chmod(0o644)
    os.replace(tmp, path)


def save_state(path: Path, state: dict) -> None:
    """Atomic ``torch.save`` (a crash mid-write never destroys the previous state)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (slower on this CPU)")
    ap.add_argument("--data", type=Path, default=Path("/work/cache/photos"))
    ap.add_argument("--runs", type=Path, default=Path("/work/cache/runs"))
    ap.add_argument("--init", type=Path, default=None, help="warm start from safetensors weights")
    ap.add_argument("--export", type=Path, default=None, help="also export weights here")
    ap.add_argument("--save-minutes", type=float, default=5.0)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=1000, help="0: never")
    ap.add_argument("--eval-limit", type=int, default=None, help="val images used in training")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this")
    ap.add_argument("--threads", type=int, default=1)
    return ap


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final state's summary (step, last val results)."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals slow CPU convolutions down several-fold
    run = args.runs / args.name
    run.mkdir(parents=True, exist_ok=True)
    log_f = (run / "log.txt").open("a")
    (run / "pid").write_text(f"{os.getpid()}\n")

    def log(msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    cfg = {k: getattr(args, k) for k in ("scale", "nf", "num_conv", "patch", "batch", "steps")}
    cfg |= {"lr": args.lr, "lr_min": args.lr_min, "warmup": args.warmup, "bf16": args.bf16}
    torch.manual_seed(args.seed)
    model = SRVGGNetCompact(3, 3, args.nf, args.num_conv, args.scale)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(args.seed)
    step, wall, history = 0, 0.0, []
    state_file = run / "state.pt"
    if state_file.is_file():
        st = torch.load(state_file, weights_only=True)
        for k in STATE_KEYS_CFG:
            if st["config"][k] != cfg[k]:
                raise SystemExit(f"{state_file}: {k}={st['config'][k]} differs from {cfg[k]}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optim"])
        rng.bit_generator.state = st["rng_numpy"]
        torch.set_rng_state(st["rng_torch"])
        step, wall, history = int(st["step"]), float(st["wall"]), list(st["history"])
        log(f"resumed {state_file} at step {step} ({wall / 60:.1f} min trained)")
    elif args.init is not None:
        model.load_state_dict(load_file(str(args.init)), strict=True)
        log(f"warm start from {args.init}")
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

    stop = {"flag": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["flag"] = True

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def meta() -> dict:
        return {"arch": "SRVGGNetCompact", "scale": args.scale, "steps": step, "nf": args.nf}

    def checkpoint() -> None:
        save_state(
            state_file,
            {
                "model": model.state_dict(),
                "optim": opt.state_dict(),
                "step": step,
                "wall": wall,
                "rng_numpy": rng.bit_generator.state,
                "rng_torch": torch.get_rng_state(),
                "config": cfg,
                "history": history,
            },
        )
        m = meta() | {"num_conv": args.num_conv, "wall_minutes": f"{wall / 60:.1f}"}
        export_weights(model, run / "model.safetensors", m)
        if args.export is not None:
            export_weights(model, args.export, m)
        log(f"saved state at step {step}")

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

    t_start = time.time()
    last_save = time.time()
    t_log, loss_acc, n_acc, t_data = time.time(), 0.0, 0, 0.0
    model.train()
    while step < args.steps and not stop["flag"]:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.lr_min, args.warmup)
        t0 = time.time()
        lr_np, hr_np = random_batch(
            images, weights, args.scale, args.patch, args.batch, rng, degrade_cfg
        )
        x, y = to_tensor(lr_np), to_tensor(hr_np)
        t_data += time.time() - t0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = model(x)
        loss = torch.nn.functional.l1_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_acc += float(loss.detach())
        n_acc += 1
        if step % args.log_every == 0 or step == args.steps:
            dt = time.time() - t_log
            wall += dt
            log(
                f"step {step} loss {loss_acc / n_acc:.5f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{n_acc / dt:.2f} steps/s (data {100 * t_data / dt:.0f}%)"
            )
            t_log, loss_acc, n_acc, t_data = time.time(), 0.0, 0, 0.0
        if args.eval_every and val and step % args.eval_every == 0:
            run_eval()
        if time.time() - last_save > args.save_minutes * 60:
            checkpoint()
            last_save = time.time()
        if args.max_minutes is not None and time.time() - t_start > args.max_minutes * 60:
            break
    wall += time.time() - t_log
    if args.eval_every and val and (not history or history[-1]["step"] != step):
        run_eval()
    checkpoint()
    for s, h in old_handlers.items():
        signal.signal(s, h)
    log_f.close()
    return {"step": step, "history": history, "params": params}


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
