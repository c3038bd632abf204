"""Train the 64x64 emoji GAN on the CPU: hinge loss, spectral-norm discriminator, EMA generator,
differentiable augmentation.

Why this recipe: with ~7,000 training images and a few thousand CPU steps, stability and data
efficiency matter more than peak quality. Spectral normalisation bounds the discriminator's
Lipschitz constant and the hinge loss stops pushing it once real and fake are separated by a
margin, which together are the simplest recipe known to train reliably without tuning (SNGAN);
an exponential moving average of the generator's weights gives visibly cleaner samples at no
training cost; and augmenting *both* real and generated images with the same random translations,
colour jitter and cutout before the discriminator (DiffAugment) keeps a small data set from
being memorised by the discriminator, without teaching the generator to produce augmented images.
The generator uses batch norm (the SNGAN generator), run in eval mode for sampling with
statistics recomputed for the EMA weights, so the truncation trick (scaling the latent) works.
A StyleGAN-lite was not chosen: its mapping network, modulated convolutions and path-length
regulariser cost several times the compute per step, which this CPU budget does not have.

Resumable like :mod:`train_vae` (``RUNS/<name>/state.pt``, ``--init`` warm-starts the generator);
exports the EMA generator (``generator.*`` keys) to ``--export`` on every save.

    nohup python -m studio.training.train_gan --steps 8000 \
        --export checkpoints/studio-emoji-gan.safetensors > /dev/null 2>&1 &
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from studio.models.archs.gan import Generator
from studio.training.emoji import load_split
from studio.training.run import Meter, Run, add_run_args, lr_at, set_lr
from studio.training.train_vae import DATA, batch_tensor, sample_fd


class Discriminator(nn.Module):
    """(N,3,64,64) in [0,1] -> (N,) scores. Spectral norm on every layer, no normalisation."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in channels:  # 64 -> 32 -> 16 -> 8 -> 4
            layers += [
                spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)),
                nn.LeakyReLU(0.1),
                spectral_norm(nn.Conv2d(cout, cout, 3, 1, 1)),
                nn.LeakyReLU(0.1),
            ]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(cin * 16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x * 2.0 - 1.0).flatten(1)).squeeze(1)


def diff_augment(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample colour jitter, translation (up to 1/8 of the side) and a cutout; differentiable.

    Input and output float (N,3,H,W) in [0,1] (colour jitter may leave that range slightly).
    """
    n, _, h, w = x.shape

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen)

    x = x + (rand(n, 1, 1, 1) - 0.5) * 0.5  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) * 2.0) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean  # contrast
    shift = h // 8
    dy = torch.randint(-shift, shift + 1, (n,), generator=gen)
    dx = torch.randint(-shift, shift + 1, (n,), generator=gen)
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    rows = (torch.arange(h)[None, :] + dy[:, None] + shift).clamp(0, h + 2 * shift - 1)
    cols = (torch.arange(w)[None, :] + dx[:, None] + shift).clamp(0, w + 2 * shift - 1)
    bidx = torch.arange(n)[:, None, None]
    x = padded.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    cut = h // 2
    cy = torch.randint(0, h + 1 - cut // 2, (n, 1, 1), generator=gen) - cut // 4
    cx = torch.randint(0, w + 1 - cut // 2, (n, 1, 1), generator=gen) - cut // 4
    yy, xx = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    keep = ~((yy >= cy) & (yy < cy + cut) & (xx >= cx) & (xx < cx + cut))
    return x * keep[:, None].to(x.dtype)


@torch.no_grad()
def recalibrate_bn(g: Generator, z_dim: int, batches: int = 32, batch: int = 64) -> None:
    """Recompute the batch-norm statistics of ``g`` (the EMA weights never had their own) as
    the plain average over ``batches`` random batches; leaves ``g`` in eval mode."""
    norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    g.train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(batches):
        g(torch.randn(batch, z_dim, generator=gen))
    g.eval()
    for m in norms:
        m.momentum = 0.1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--name", default="emoji-gan")
    ap.add_argument("--z", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--lr-min", type=float, default=5e-5)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--no-augment", action="store_true")
    add_run_args(
        ap,
        data=DATA,
        save_minutes=10.0,
        log_every=100,
        eval_every=1000,
        init_help="warm start G from safetensors",
        export_help="also export G (EMA) here",
    )
    return ap


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final step and history."""
    run = Run.start(args)
    run.catch_signals()
    cfg = {
        "z": args.z,
        "batch": args.batch,
        "steps": args.steps,
        "lr": args.lr,
        "ema": args.ema,
        "augment": not args.no_augment,
        "bf16": args.bf16,
    }
    torch.manual_seed(args.seed)
    g_net, d_net = Generator(args.z), Discriminator()
    g_ema = copy.deepcopy(g_net).requires_grad_(False)
    opt_g = torch.optim.Adam(g_net.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_net.parameters(), lr=args.lr, betas=(0.5, 0.999))
    rng = np.random.default_rng(args.seed)
    step, wall, history = 0, 0.0, []
    if (st := run.load(cfg, ("z",))) is not None:
        g_net.load_state_dict(st["g"])
        d_net.load_state_dict(st["d"])
        g_ema.load_state_dict(st["g_ema"])
        opt_g.load_state_dict(st["opt_g"])
        opt_d.load_state_dict(st["opt_d"])
        step, wall, history = run.resume(st, rng)
        run.log(f"resumed at step {step} ({wall / 60:.1f} min trained)")
    elif args.init is not None:
        g_net.load_state_dict(load_file(str(args.init)), strict=True)
        g_ema.load_state_dict(g_net.state_dict())
        run.log(f"warm start from {args.init}")
    for m in (g_net, d_net, g_ema):
        m.to(memory_format=torch.channels_last)
    n_g = sum(p.numel() for p in g_net.parameters())
    n_d = sum(p.numel() for p in d_net.parameters())
    run.log(f"config {json.dumps(cfg)} G params={n_g} D params={n_d}")
    x_tr, _ = load_split(args.data, "train")
    x_va, _ = load_split(args.data, "val")
    run.log(f"{len(x_tr)} train, {len(x_va)} val images")
    aug = (lambda x: x) if args.no_augment else diff_augment

    def evaluate() -> None:
        recalibrate_bn(g_ema, args.z)
        fd = sample_fd(g_ema, x_va, len(x_va))
        history.append({"step": step, "fd_val": fd, "wall_min": wall / 60})
        run.log(f"eval step {step}: FD(EMA samples, val) {fd:.2f} (n={len(x_va)})")

    def checkpoint() -> None:
        recalibrate_bn(g_ema, args.z)
        state = {"g": g_net.state_dict(), "d": d_net.state_dict(), "g_ema": g_ema.state_dict()}
        state |= {"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}
        meta = {
            "arch": "conv-gan",
            "steps": step,
            "wall_minutes": f"{wall / 60:.1f}",
            "config": json.dumps(cfg),
            "last_eval": json.dumps(history[-1:]),
        }
        run.save(state | run.progress(step, wall, rng, cfg, history), g_ema, meta, args.export)

    def autocast() -> torch.autocast:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)

    run.start_clock()
    meter = Meter(4)  # loss_d, loss_g, D(real), D(fake)
    g_net.train()
    d_net.train()
    while step < args.steps and not run.stop:
        lr = lr_at(step, args.steps, args.lr, args.lr_min, 100)
        set_lr(lr, opt_g, opt_d)
        real = batch_tensor(x_tr, rng.integers(0, len(x_tr), args.batch))
        # discriminator step
        with torch.no_grad(), autocast():
            fake = g_net(torch.randn(args.batch, args.z)).float()
        with autocast():
            d_real = d_net(aug(real)).float()
            d_fake = d_net(aug(fake)).float()
        loss_d = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # generator step
        d_net.requires_grad_(False)
        with autocast():
            fake = g_net(torch.randn(args.batch, args.z))
            loss_g = -d_net(aug(fake.float())).float().mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d_net.requires_grad_(True)
        with torch.no_grad():
            for pe, p in zip(g_ema.parameters(), g_net.parameters(), strict=True):
                pe.lerp_(p, 1.0 - args.ema)
        step += 1
        stats = (loss_d, loss_g, d_real.mean(), d_fake.mean())
        meter.add(*(float(v.detach()) for v in stats))
        if meter.due(step, args.log_every, args.steps):
            sums, n_acc, dt = meter.lap()
            wall += dt
            a = sums / n_acc
            run.log(
                f"step {step} loss_d {a[0]:.3f} loss_g {a[1]:.3f} D(real) {a[2]:+.2f} "
                f"D(fake) {a[3]:+.2f} lr {lr:.2e} {n_acc / dt:.2f} steps/s"
            )
        if run.tick(step, evaluate, checkpoint):
            break
    wall += meter.elapsed()
    run.finish(step, history, evaluate, checkpoint)
    return {"step": step, "history": history}


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
