"""Train the 64x64 emoji VAE on the CPU (also home of the run bookkeeping the GAN trainer shares).

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
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from studio.models import generate as gen
from studio.models.archs.vae import PRIOR_KEYS, ConvVAE
from studio.training.emoji import load_split
from studio.training.fid import features, frechet_distance, load_feature_net
from studio.training.train_sr import export_weights, lr_at, save_state

DATA = Path("/work/cache/emoji")
RUNS = Path("/work/cache/runs")


class Run:
    """Log file, pid file, signal-triggered stop and atomic state save of one training run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.state_file = folder / "state.pt"
        self._log = (folder / "log.txt").open("a")
        (folder / "pid").write_text(f"{os.getpid()}\n")
        self.stop = False
        self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stop = True

    def log(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def load(self) -> dict | None:
        if not self.state_file.is_file():
            return None
        return torch.load(self.state_file, weights_only=True)

    def save(self, state: dict) -> None:
        save_state(self.state_file, state)

    def close(self) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._log.close()


def check_config(saved: dict, cfg: dict, keys: tuple[str, ...], where: Path) -> None:
    for k in keys:
        if saved.get(k) != cfg[k]:
            raise SystemExit(f"{where}: {k}={saved.get(k)} differs from {cfg[k]}; use a new --name")


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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--init", type=Path, default=None, help="warm start from safetensors weights")
    ap.add_argument("--export", type=Path, default=None, help="also export weights here")
    ap.add_argument("--save-minutes", type=float, default=10.0)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=2000, help="0: never")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this")
    ap.add_argument("--threads", type=int, default=1)
    return ap


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final step and history."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    run = Run(args.runs / args.name)
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
    if (st := run.load()) is not None:
        check_config(st["config"], cfg, ("z", "sigma"), run.state_file)
        missing, unexpected = model.load_state_dict(st["model"], strict=False)
        if unexpected or set(missing) - set(PRIOR_KEYS):
            raise SystemExit(f"{run.state_file}: weights do not match ({missing}, {unexpected})")
        opt.load_state_dict(st["optim"])
        rng.bit_generator.state = st["rng_numpy"]
        torch.set_rng_state(st["rng_torch"])
        step, wall, history = int(st["step"]), float(st["wall"]), list(st["history"])
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
        run.save(
            {
                "model": model.state_dict(),
                "optim": opt.state_dict(),
                "step": step,
                "wall": wall,
                "rng_numpy": rng.bit_generator.state,
                "rng_torch": torch.get_rng_state(),
                "config": cfg,
                "history": history,
            }
        )
        meta = {
            "arch": "conv-vae",
            "steps": step,
            "wall_minutes": f"{wall / 60:.1f}",
            "config": json.dumps(cfg),
            "last_eval": json.dumps(history[-1:]),
            "prior": json.dumps(prior),
        }
        export_weights(model, run.folder / "model.safetensors", meta)
        if args.export is not None:
            export_weights(model, args.export, meta)
        run.log(f"saved state at step {step}")

    t_start = last_save = t_log = time.time()
    acc = np.zeros(3)
    n_acc = 0
    model.train()
    while step < args.steps and not run.stop:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.lr_min, args.warmup)
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
        acc += (float(loss.detach()), float(rec.detach()), float(kl.detach()))
        n_acc += 1
        if step % args.log_every == 0 or step == args.steps:
            dt = time.time() - t_log
            wall += dt
            a = acc / n_acc
            run.log(
                f"step {step} loss {a[0]:.1f} rec {a[1]:.1f} kl {a[2]:.1f} beta {beta:.2f} "
                f"lr {opt.param_groups[0]['lr']:.2e} {n_acc * args.batch / dt:.1f} img/s"
            )
            t_log, acc, n_acc = time.time(), np.zeros(3), 0
        if args.eval_every and step % args.eval_every == 0:
            evaluate()
        if time.time() - last_save > args.save_minutes * 60:
            checkpoint()
            last_save = time.time()
        if args.max_minutes is not None and time.time() - t_start > args.max_minutes * 60:
            break
    wall += time.time() - t_log
    if not history or history[-1]["step"] != step:
        evaluate()
    checkpoint()
    run.close()
    return {"step": step, "history": history, "params": params}


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
