"""Train Studio's text-to-image model (``studio-text2img``) on a captioned pack, on the CPU or CUDA.

The pack (``studio.training`` captions builder): ``train.npz``/``val.npz`` with ``images`` uint8
[N,64,64,3], ``caption_ids`` int32 [N,K] (-1 unused) into the caption bank and ``canonical``
int32 [N]; ``captions.safetensors`` with the bank's MiniLM ``tokens`` fp16 [M,16,384] and
``mask`` uint8 [M,16]; ``captions.json`` (index 0 is the empty caption). Captions are encoded
once by the pack builder, so a training step never runs the text encoder.

Each step: a random caption variant per image, replaced by the empty caption (index 0) with
probability ``--drop`` (classifier-free guidance needs the unconditional model); horizontal flips
only where a flip cannot contradict the caption (no left/right, arrows, text, flags, digits);
a random timestep; MSE on the **v-prediction** target. Why v: with the zero-terminal-SNR cosine
schedule the last step is pure noise, where epsilon-prediction is undefined (it cannot say what
the image is), and v keeps the loss well scaled at both ends of the schedule, which matters
with the few sampling steps Studio uses. EMA weights are what gets exported (fp16).

Same code on CPU and CUDA: bf16 autocast, channels-last, ``--device``. Resumable: the full state
(model, EMA, optimiser, step, wall time, RNGs, history) is saved atomically every
``--save-minutes`` and on SIGTERM/SIGINT into ``RUNS/<name>/state.pt``; the next start resumes
it (a new ``--data`` pack is fine: weights and optimiser carry over).

    nohup python -m studio.training.train_text2img --data $STUDIO_CACHE/captioned \
        --threads 1 --export checkpoints/studio-text2img.safetensors > /dev/null 2>&1 &
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from studio.models.archs.text_unet import (
    DEFAULT_CONFIG,
    DEFAULT_SCHEDULE,
    build_text_unet,
    save_text_unet,
)
from studio.paths import data_cache_dir
from studio.training.run import Meter, Run, add_run_args, lr_at, save_state, set_lr

DATA = data_cache_dir() / "captioned"
# captions that a mirror image would contradict
_NO_FLIP = re.compile(
    r"\b(left|right|arrow|arrows|flag|letter|letters|text|word|sign|clock|digit|number|"
    r"keycap|symbol|button|[a-z]?\d)\b",
    re.IGNORECASE,
)


class Pack:
    """A loaded captioned pack split: images, caption ids and the encoded caption bank."""

    def __init__(self, root: Path, split: str, bank: dict[str, torch.Tensor], texts: list[str]):
        with np.load(root / f"{split}.npz") as z:
            self.images = z["images"]
            self.caption_ids = z["caption_ids"].astype(np.int64)
            self.canonical = z["canonical"].astype(np.int64)
            flip = z["flip_ok"].astype(bool) if "flip_ok" in z.files else None
        if flip is None:
            rows = self.caption_ids
            flip = np.array([not any(_NO_FLIP.search(texts[c]) for c in r if c > 0) for r in rows])
        self.flip_ok = flip
        self.tokens = bank["tokens"]
        self.mask = bank["mask"].bool()
        self.n_valid = (self.caption_ids >= 0).sum(1)
        if (self.n_valid == 0).any():
            raise SystemExit(f"{root / split}.npz: an image without any caption")

    def __len__(self) -> int:
        return len(self.images)

    def pick_captions(self, idx: np.ndarray, rng: np.random.Generator, drop: float) -> np.ndarray:
        """A random caption id per image, 0 (empty) with probability ``drop``."""
        col = (rng.random(len(idx)) * self.n_valid[idx]).astype(np.int64)
        ids = self.caption_ids[idx, col]
        return np.where(rng.random(len(idx)) < drop, 0, ids)

    def batch(
        self, idx: np.ndarray, caps: np.ndarray, flips: np.ndarray, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x0 [-1,1] channels-last, tokens float [B,16,384], mask bool [B,16])``."""
        x = torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if flips.any():
            f = torch.from_numpy(flips)
            x[f] = x[f].flip(-1)
        x = x.contiguous(memory_format=torch.channels_last).to(device)
        c = torch.from_numpy(caps)
        return x, self.tokens[c].float().to(device), self.mask[c].to(device)


def load_pack(root: Path) -> tuple[Pack, Pack, list[str]]:
    """``(train, val, caption texts)`` of the pack in ``root``."""
    from safetensors.torch import load_file

    texts = json.loads((root / "captions.json").read_text())
    bank = load_file(str(root / "captions.safetensors"))
    return Pack(root, "train", bank, texts), Pack(root, "val", bank, texts), texts


def make_noise_schedule(schedule: dict):
    """The diffusers DDPM scheduler over ``schedule``: its ``add_noise`` and ``get_velocity``
    are the training side of the samplers in :mod:`studio.models.samplers`."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(schedule)


def diffusion_loss(
    model: torch.nn.Module,
    sched,
    x0: torch.Tensor,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    bf16: bool,
) -> torch.Tensor:
    """Mean squared error of the model's prediction against the schedule's target."""
    xt = sched.add_noise(x0, noise, t)
    if sched.config.prediction_type == "v_prediction":
        target = sched.get_velocity(x0, noise, t)
    else:
        target = noise
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(xt, t, tokens, encoder_attention_mask=mask)
    return F.mse_loss(out.float(), target)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - decay)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--name", default="text2img")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200_000, help="cosine length; stop earlier")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--lr-min", type=float, default=3e-5)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--drop", type=float, default=0.1, help="caption dropout probability")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, nargs=3, default=None, help="block channels")
    ap.add_argument("--until", default=None, help="stop (and save) at this UTC time, HH:MM")
    add_run_args(ap, data=DATA, save_minutes=10.0, log_every=25, eval_every=500)
    return ap


def _until_seconds(hhmm: str | None) -> float | None:
    if hhmm is None:
        return None
    h, m = (int(v) for v in hhmm.split(":"))
    now = time.gmtime()
    left = (h * 60 + m) * 60 - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)
    return left if left > 0 else left + 86400


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final step, history and parameter count."""
    if args.until is not None:
        args.max_minutes = _until_seconds(args.until) / 60
    run = Run.start(args)
    run.catch_signals()
    device = torch.device(args.device)
    unet_cfg = copy.deepcopy(DEFAULT_CONFIG)
    if args.width is not None:
        unet_cfg["unet"]["block_out_channels"] = list(args.width)
    schedule = dict(DEFAULT_SCHEDULE)
    cfg = {
        "unet": json.dumps(unet_cfg),
        "schedule": json.dumps(schedule),
        "batch": args.batch,
        "lr": args.lr,
        "drop": args.drop,
        "ema": args.ema,
        "bf16": args.bf16,
    }
    torch.manual_seed(args.seed)
    model = build_text_unet(unet_cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    step, wall, history = 0, 0.0, []
    if (st := run.load(cfg, ("unet", "schedule"))) is not None:
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["optim"])
        step, wall, history = run.resume(st, rng)
        run.log(f"resumed at step {step} ({wall / 60:.1f} min trained)")
    elif args.init is not None:
        from studio.models.archs.text_unet import read_text_unet

        sd, _ = read_text_unet(args.init)
        model.load_state_dict({k: v.float() for k, v in sd.items()})
        ema.load_state_dict(model.state_dict())
        run.log(f"warm start from {args.init}")
    model = model.to(device, memory_format=torch.channels_last).train()
    ema = ema.to(device, memory_format=torch.channels_last).eval()
    for group in opt.state.values():
        for k, v in group.items():
            if torch.is_tensor(v) and k != "step":
                group[k] = v.to(device)
    sched = make_noise_schedule(schedule)
    sched.alphas_cumprod = sched.alphas_cumprod.to(device)
    params = sum(p.numel() for p in model.parameters())
    train_set, val_set, texts = load_pack(args.data)
    run.log(f"config {json.dumps(cfg)} params={params} device={device}")
    run.log(
        f"{args.data}: {len(train_set)} train, {len(val_set)} val images, {len(texts)} captions, "
        f"{train_set.flip_ok.mean():.0%} flippable"
    )
    # a fixed validation batch with fixed noise and timesteps: comparable across evaluations
    gen = np.random.default_rng(1234)
    v_idx = gen.choice(len(val_set), min(256, len(val_set)), replace=False)
    v_caps = val_set.caption_ids[v_idx, 0]
    v_t = torch.from_numpy(gen.integers(0, schedule["num_train_timesteps"], len(v_idx)))
    v_noise = torch.from_numpy(gen.standard_normal((len(v_idx), 3, 64, 64), dtype=np.float32))

    def evaluate() -> None:
        losses = []
        with torch.inference_mode():
            for i in range(0, len(v_idx), 64):
                s = slice(i, i + 64)
                x0, tok, msk = val_set.batch(
                    v_idx[s], v_caps[s], np.zeros(len(v_idx[s]), bool), device
                )
                loss = diffusion_loss(
                    ema, sched, x0, tok, msk, v_t[s].to(device), v_noise[s].to(device), args.bf16
                )
                losses.append(float(loss) * len(x0))
        val = sum(losses) / len(v_idx)
        history.append({"step": step, "val_loss_ema": val, "wall_min": wall / 60})
        run.log(f"eval step {step}: val loss (EMA, fixed t and noise) {val:.5f}")

    def checkpoint() -> None:
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "optim": opt.state_dict()}
        save_state(run.state_file, state | run.progress(step, wall, rng, cfg, history))
        meta = {
            "steps": step,
            "wall_minutes": f"{wall / 60:.1f}",
            "device": str(device),
            "data": str(args.data.name),
            "last_eval": json.dumps(history[-1:]),
        }
        save_text_unet(ema, run.folder / "ema.safetensors", schedule, meta)
        if args.export is not None:
            save_text_unet(ema, args.export, schedule, meta)
        run.log(f"saved state at step {step}")

    run.start_clock()
    meter = Meter(2)  # loss, data seconds
    n_t = schedule["num_train_timesteps"]
    while step < args.steps and not run.stop:
        t0 = time.perf_counter()
        set_lr(lr_at(step, args.steps, args.lr, args.lr_min, args.warmup), opt)
        idx = rng.integers(0, len(train_set), args.batch)
        caps = train_set.pick_captions(idx, rng, args.drop)
        flips = train_set.flip_ok[idx] & (rng.random(args.batch) < 0.5)
        x0, tok, msk = train_set.batch(idx, caps, flips, device)
        t = torch.from_numpy(rng.integers(0, n_t, args.batch)).to(device)
        noise = torch.randn(x0.shape, device=device).contiguous(memory_format=torch.channels_last)
        data_s = time.perf_counter() - t0
        loss = diffusion_loss(model, sched, x0, tok, msk, t, noise, args.bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        update_ema(ema, model, min(args.ema, (1 + step) / (10 + step)))
        meter.add(float(loss.detach()), data_s)
        if meter.due(step, args.log_every, args.steps):
            sums, n_acc, dt = meter.lap()
            wall += dt
            run.log(
                f"step {step} loss {sums[0] / n_acc:.5f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{n_acc * args.batch / dt:.1f} img/s (data {100 * sums[1] / dt:.0f}%)"
            )
        if run.tick(step, evaluate, checkpoint):
            break
    wall += meter.elapsed()
    run.finish(step, history, evaluate, checkpoint)
    return {"step": step, "history": history, "params": params}


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
