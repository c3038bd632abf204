"""Train the 64x64 emoji VAE on the CPU (also home of the data and FD helpers the GAN trainer uses).

Loss per image: ``sum((x' - x)^2) / (2 sigma^2) + beta * KL(q(z|x) || N(0, I))``, i.e. a Gaussian
likelihood with fixed ``sigma`` (smaller: sharper reconstructions, a less regular latent space);
``beta`` ramps from 0 to 1 over ``--kl-warmup`` steps so the decoder learns before the KL term
pulls the posterior to the prior. Adam, linear warm-up then cosine decay.

Resumable: full state (model, optimiser, step, wall time, RNG, config, history) goes atomically to
``RUNS/<name>/state.pt`` every ``--save-minutes`` and on SIGTERM/SIGINT and is loaded on the next
start (``weights_only=True``); ``--init W.safetensors`` warm-starts from weights. Every save also
exports the weights (``--export``) with the step, time and last evaluation in the metadata.

    nohup python -m studio.training.train_vae --steps 12000 \
        --export checkpoints/studio-emoji-vae.safetensors > /dev/null 2>&1 &
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from safetensors.torch import load_file

from studio.models import generate as gen
from studio.models.archs.vae import PRIOR_KEYS, ConvVAE
from studio.paths import data_cache_dir
from studio.training.emoji import load_split
from studio.training.fid import features, frechet_distance, load_feature_net
from studio.training.run import Meter, Run, add_run_args, lr_at, set_lr

DATA = data_cache_dir() / "emoji"


def batch_tensor(images: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    """uint8 (N,64,64,3)[idx] -> float32 (B,3,64,64) in [0,1], channels-last."""
    x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean per-image PSNR (dB) of two [0,1] batches, after rounding to 8 bits."""
    a8, b8 = (a * 255).round() / 255, (b * 255).round() / 255
    mse = ((a8 - b8) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N,3,H,W) in [0,1] -> uint8 (N,H,W,3)."""
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def sample_fd(model: torch.nn.Module, ref: np.ndarray, n: int, truncation: float = 1.0) -> float:
    """FD between ``n`` samples of ``model`` (seeds 0..n-1) and the reference images ``ref``."""
    net = load_feature_net()
    was_training = model.training
    model.eval()
    out = [gen.sample(model, range(i, min(i + 256, n)), truncation) for i in range(0, n, 256)]
    model.train(was_training)
    return frechet_distance(features(net, np.concatenate(out)), features(net, ref))


@torch.inference_mode()
def fit_prior(model: ConvVAE, images: np.ndarray) -> dict:
    """Fit the sampling prior to the posterior means of ``images`` (a full-covariance Gaussian).

    Sets ``prior_loc`` and ``prior_scale_tril`` in place; returns a summary of the fit.
    """
    was_training = model.training
    model.eval()
    mus = [
        model.encode(batch_tensor(images, np.arange(i, min(i + 256, len(images)))))[0]
        for i in range(0, len(images), 256)
    ]
    mu = torch.cat(mus).double()
    loc = mu.mean(0)
    cov = torch.cov(mu.T) + 1e-6 * torch.eye(mu.shape[1], dtype=torch.float64)
    model.prior_loc.copy_(loc.float())
    model.prior_scale_tril.copy_(torch.linalg.cholesky(cov).float())
    model.train(was_training)
    var = torch.linalg.eigvalsh(cov)
    return {
        "n": len(images),
        "active_dims": int((torch.diagonal(cov) > 0.01).sum()),
        "largest_var": float(var[-1]),
        "mean_norm": float(loc.norm()),
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--name", default="emoji-vae")
    ap.add_argument("--z", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-min", type=float, default=2e-5)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--sigma", type=float, default=0.1, help="likelihood std in [0,1] units")
    ap.add_argument("--kl-warmup", type=int, default=2000)
    add_run_args(ap, data=DATA, save_minutes=10.0, log_every=100, eval_every=2000)
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
        "sigma": args.sigma,
        "kl_warmup": args.kl_warmup,
        "bf16": args.bf16,
    }
    torch.manual_seed(args.seed)
    model = ConvVAE(args.z)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    step, wall, history = 0, 0.0, []
    if (st := run.load(cfg, ("z", "sigma"))) is not None:
        missing, unexpected = model.load_state_dict(st["model"], strict=False)
        if unexpected or set(missing) - set(PRIOR_KEYS):
            raise SystemExit(f"{run.state_file}: weights do not match ({missing}, {unexpected})")
        opt.load_state_dict(st["optim"])
        step, wall, history = run.resume(st, rng)
        run.log(f"resumed at step {step} ({wall / 60:.1f} min trained)")
    elif args.init is not None:
        init = load_file(str(args.init))
        for key in PRIOR_KEYS:
            init.setdefault(key, model.state_dict()[key])
        model.load_state_dict(init, strict=True)
        run.log(f"warm start from {args.init}")
    model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    run.log(f"config {json.dumps(cfg)} params={params}")
    x_tr, _ = load_split(args.data, "train")
    x_va, _ = load_split(args.data, "val")
    run.log(f"{len(x_tr)} train, {len(x_va)} val images")
    inv_2s2 = 1.0 / (2.0 * args.sigma**2)

    def evaluate() -> None:
        model.eval()
        with torch.inference_mode():
            xs = [
                batch_tensor(x_va, np.arange(i, min(i + 128, len(x_va))))
                for i in range(0, len(x_va), 128)
            ]
            rec = [model(x) for x in xs]
            val_psnr = float(np.mean([psnr(r, x) for r, x in zip(rec, xs, strict=True)]))
            mu, lv = model.encode(torch.cat(xs))
            kl = float((-0.5 * (1 + lv - mu**2 - lv.exp())).sum(1).mean())
        fit_prior(model, x_tr)
        fd = sample_fd(model, x_va, len(x_va))
        model.train()
        history.append(
            {"step": step, "val_psnr": val_psnr, "val_kl": kl, "fd_val": fd, "wall_min": wall / 60}
        )
        run.log(
            f"eval step {step}: val PSNR {val_psnr:.2f} dB, KL {kl:.1f} nats, "
            f"FD(samples, val) {fd:.2f} (n={len(x_va)})"
        )

    def checkpoint() -> None:
        prior = fit_prior(model, x_tr)
        state = {"model": model.state_dict(), "optim": opt.state_dict()}
        meta = {
            "arch": "conv-vae",
            "steps": step,
            "wall_minutes": f"{wall / 60:.1f}",
            "config": json.dumps(cfg),
            "last_eval": json.dumps(history[-1:]),
            "prior": json.dumps(prior),
        }
        run.save(state | run.progress(step, wall, rng, cfg, history), model, meta, args.export)

    run.start_clock()
    meter = Meter(3)  # loss, reconstruction, KL
    model.train()
    while step < args.steps and not run.stop:
        set_lr(lr_at(step, args.steps, args.lr, args.lr_min, args.warmup), opt)
        beta = min(1.0, step / max(1, args.kl_warmup))
        x = batch_tensor(x_tr, rng.integers(0, len(x_tr), args.batch))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            mu, logvar = model.encode(x)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            out = model.decode(z)
        mu, logvar = mu.float(), logvar.float()
        rec = ((out.float() - x) ** 2).flatten(1).sum(1).mean() * inv_2s2
        kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp())).sum(1).mean()
        loss = rec + beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        meter.add(float(loss.detach()), float(rec.detach()), float(kl.detach()))
        if meter.due(step, args.log_every, args.steps):
            sums, n_acc, dt = meter.lap()
            wall += dt
            a = sums / n_acc
            run.log(
                f"step {step} loss {a[0]:.1f} rec {a[1]:.1f} kl {a[2]:.1f} beta {beta:.2f} "
                f"lr {opt.param_groups[0]['lr']:.2e} {n_acc * args.batch / dt:.1f} img/s"
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
