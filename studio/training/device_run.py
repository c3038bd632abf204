"""The one command a lent GPU machine runs: train ``studio-text2img`` on the device pack.

Run from the repository root (the machine has torch, safetensors, numpy and Pillow but no
``diffusers``: its wheel travels in ``--wheels`` and is installed into ``--site`` first)::

    python3 -m studio.training.device_run --pack .gpupack/device_pack.npz \
        --wheels .gpupack/wheels --features .gpupack/studio-emoji-features.safetensors \
        --clip .gpupack/mini-clip.safetensors --device cuda --bf16 --size wide --batch 512 \
        --minutes 7 --out "$OUT"

What it does: decodes the pack (:mod:`studio.training.device_pack`) straight into device
memory (images uint8, the reduced caption bank), so a step never waits on the host; trains the
UNet of :mod:`studio.models.archs.text_unet` with cross-attention over the pack's ``dims``-wide
projected MiniLM tokens (v-prediction, caption dropout, flips where the captions allow, bf16
autocast, channels-last, AdamW with a warm-up then a cosine over the wall-clock budget, EMA);
every ``--export-minutes`` and at the end folds the projection into the EMA weights and writes
an ordinary 384-d ``studio-text2img`` fp16 file to ``OUT`` (under 16 MiB); saves the full state
to ``--state-dir`` (on the machine: a second command on the same warm machine resumes it);
ends with the EMA validation loss, FD of caption-conditioned samples against the val images
(next to the train-vs-val floor), the mini-CLIP's R-precision of samples for held-out captions
and unseen paraphrases (next to the real images') and a sample sheet. Log: ``OUT/log.txt``,
numbers: ``OUT/eval.json``.

Same code on the CPU for a few steps: ``--device cpu --minutes 0.2 --size tiny``.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: UNet block widths by ``--size``; ``wide`` is the recommendation for an 8-minute H200 run
#: (see the model card): 2.6 GFLOP per image per call and 7.2 M parameters once folded, 13.7
#: MiB in fp16 (a returned file may hold 16 MiB)
SIZES: dict[str, list[int]] = {
    "tiny": [8, 16, 16],
    "base": [32, 64, 128],
    "wide": [64, 128, 128],
}
EXPORT_NAME = "studio-text2img-device.safetensors"


# -- set-up ------------------------------------------------------------------------------------


def install_wheels(wheels: Path | None, site: Path, log=print) -> None:
    """``pip install --no-deps --no-index`` every wheel in ``wheels`` into ``site`` and put it
    first on ``sys.path``; nothing to do when ``diffusers`` already imports."""
    if importlib.util.find_spec("diffusers") is not None:
        return
    found = sorted(wheels.glob("*.whl")) if wheels is not None and wheels.is_dir() else []
    if not found:
        raise SystemExit(f"diffusers is not installed and no wheels were found in {wheels}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-deps",
        "--no-compile",
        "--no-cache-dir",
        "--upgrade",
        "--target",
        str(site),
    ]
    subprocess.run(cmd + [str(w) for w in found], check=True)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    log(f"installed {', '.join(w.name for w in found)} into {site}")


def unet_config(widths: list[int], context_dim: int) -> dict[str, Any]:
    """The shipped text-UNet layout with other block widths and a context width."""
    from studio.models.archs.text_unet import DEFAULT_CONFIG

    cfg = copy.deepcopy(DEFAULT_CONFIG)
    groups = math.gcd(32, *widths)
    cfg["unet"].update(
        block_out_channels=list(widths), cross_attention_dim=context_dim, norm_num_groups=groups
    )
    if groups < 32:
        cfg["unet"]["attention_head_dim"] = 2
    return cfg


def fold_projection(model: torch.nn.Module, proj: torch.Tensor) -> torch.nn.Module:
    """The same network taking full 384-d MiniLM tokens: every cross-attention key and value
    weight ``W`` [inner, dims] becomes ``W @ proj`` [inner, 384]. Exact because those linears
    have no bias and the projection has no offset; a load with ``strict=True`` fails if any other
    weight reads the context."""
    from studio.models.archs.text_unet import build_text_unet

    dims = int(proj.shape[0])
    cfg = copy.deepcopy(model.config)
    cfg["unet"]["cross_attention_dim"] = int(proj.shape[1])
    sd = {}
    for name, v in model.state_dict().items():
        if name.endswith(("attn2.to_k.weight", "attn2.to_v.weight")) and v.shape[1] == dims:
            v = v.float() @ proj.to(v.device).float()
        sd[name] = v.detach().float().cpu()
    folded = build_text_unet(cfg)
    folded.load_state_dict(sd, strict=True)
    return folded.eval()


class DeviceData:
    """The pack in device memory: batches are gathered there."""

    def __init__(self, pack, device: torch.device) -> None:
        self.images = torch.from_numpy(pack.train_images).to(device)
        self.ids = torch.from_numpy(pack.train_caption_ids).to(device)
        self.n_valid = (self.ids >= 0).sum(1)
        self.flip_ok = torch.from_numpy(pack.train_flip_ok).to(device)
        self.tokens = pack.tokens.to(device)
        self.mask = pack.mask.to(device)
        self.device = device

    def batch(self, size: int, drop: float, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """``(x0 [-1,1] channels-last, tokens [B,16,dims], mask [B,16])`` of a random batch."""
        d = self.device
        idx = torch.randint(0, len(self.images), (size,), device=d, generator=gen)
        col = (torch.rand(size, device=d, generator=gen) * self.n_valid[idx]).long()
        caps = self.ids[idx, col]
        caps = torch.where(torch.rand(size, device=d, generator=gen) < drop, 0, caps)
        x = self.images[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)  # channels-last
        flip = self.flip_ok[idx] & (torch.rand(size, device=d, generator=gen) < 0.5)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.contiguous(memory_format=torch.channels_last), self.tokens[caps], self.mask[caps]


# -- sampling and evaluation -------------------------------------------------------------------


@torch.inference_mode()
def sample(
    model: torch.nn.Module,
    schedule: dict,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    empty: tuple[torch.Tensor, torch.Tensor],
    steps: int = 20,
    guidance: float = 5.0,
    seed: int = 0,
    bf16: bool = False,
) -> np.ndarray:
    """uint8 [N,64,64,3]: DPM-Solver++ from the training schedule, guidance against the empty
    caption, one batch of ``2N``; ``tokens``/``mask`` are reduced caption states on the device."""
    from studio.models.samplers import make_scheduler

    device = tokens.device
    n = len(tokens)
    sched = make_scheduler("dpm++", schedule)
    sched.set_timesteps(steps, device=device)
    gen = torch.Generator("cpu").manual_seed(seed)
    x = torch.randn((n, 3, 64, 64), generator=gen).to(device) * sched.init_noise_sigma
    ctx = torch.cat([empty[0].expand(n, -1, -1), tokens])
    msk = torch.cat([empty[1].expand(n, -1), mask])
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t)
        batch = torch.cat([x_in, x_in]).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(batch, t.reshape(1).expand(2 * n), ctx, encoder_attention_mask=msk)
        uncond, cond = out.float().chunk(2)
        x = sched.step(uncond + guidance * (cond - uncond), t, x).prev_sample
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """Images side by side in rows of ``cols``, 2-px white gaps."""
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = im
    return out


def r_precisions(
    clip_path: Path, pack, images: np.ndarray, ema, schedule: dict, data: DeviceData, args
) -> dict:
    """R-precision by the mini-CLIP (:mod:`studio.training.eval_adherence`'s measure: own
    caption ranked first among 100) of the real val images (ceiling), of samples for the held-out
    captions and of samples for the unseen paraphrases."""
    from safetensors.torch import load_file

    from studio.models.archs.mini_clip import MiniClipArch
    from studio.training.eval_adherence import r_precision

    clip = MiniClipArch().load(load_file(str(clip_path))).module.float()
    n = len(images)

    def image_vectors(x: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return clip.encode_image(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255)

    def text_vectors(ids: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return clip.encode_text(torch.stack([pack.pooled[int(i)] for i in ids]))

    caps = pack.eval_caption[:n]
    out = {
        "r_precision_real": r_precision(
            image_vectors(pack.val_images[pack.eval_index[:n]]),
            text_vectors(caps),
            np.random.default_rng(0),
            groups=caps,
        ),
        "r_precision_generated": r_precision(
            image_vectors(images), text_vectors(caps), np.random.default_rng(0), groups=caps
        ),
    }
    para = pack.eval_paraphrase[:n]
    has = para >= 0
    if has.sum() >= 2:
        ids = torch.from_numpy(para[has]).to(data.device)
        empty = (data.tokens[:1], data.mask[:1])
        gen = sample(
            ema,
            schedule,
            data.tokens[ids],
            data.mask[ids],
            empty,
            args.eval_steps,
            args.guidance,
            7,
            args.bf16,
        )
        out["r_precision_paraphrase"] = r_precision(
            image_vectors(gen),
            text_vectors(para[has]),
            np.random.default_rng(0),
            groups=para[has],
        )
    out["r_precision_n"] = n
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def final_eval(ema, schedule, pack, data: DeviceData, args, log) -> dict:
    """FD of samples for the eval captions against the val images, the train-vs-val floor at
    the same sizes, and a sheet of the first 64 eval captions with the captions in order."""
    from PIL import Image

    out: dict[str, Any] = {}
    n = min(args.eval_n, len(pack.eval_caption))
    if n == 0:
        return out
    caps = torch.from_numpy(pack.eval_caption[:n]).to(data.device)
    t0 = time.perf_counter()
    images = np.concatenate(
        [
            sample(
                ema,
                schedule,
                data.tokens[caps[i : i + 256]],
                data.mask[caps[i : i + 256]],
                (data.tokens[:1], data.mask[:1]),
                args.eval_steps,
                args.guidance,
                i,
                args.bf16,
            )
            for i in range(0, n, 256)
        ]
    )
    out["sample_seconds"] = round(time.perf_counter() - t0, 1)
    sheet = Path(args.out) / "samples.png"
    Image.fromarray(grid(images[:64])).save(sheet)
    (Path(args.out) / "samples.txt").write_text(
        "\n".join(pack.texts[int(c)] for c in pack.eval_caption[:64]) + "\n"
    )
    if args.clip is not None and args.clip.is_file() and n >= 2:
        out |= r_precisions(args.clip, pack, images, ema, schedule, data, args)
    if args.features is not None and args.features.is_file():
        from studio.training.fid import features, frechet_distance, load_feature_net

        net = load_feature_net(args.features)
        real = features(net, pack.val_images)
        rng = np.random.default_rng(0)
        floor = pack.train_images[rng.choice(len(pack.train_images), n, replace=False)]
        out["fd_samples_vs_val"] = round(frechet_distance(features(net, images), real), 2)
        out["fd_train_vs_val_floor"] = round(frechet_distance(features(net, floor), real), 2)
        out["fd_n"] = n
    log(f"final eval: {json.dumps(out)}")
    return out


# -- training ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--pack", type=Path, default=Path(".gpupack/device_pack.npz"))
    ap.add_argument("--wheels", type=Path, default=Path(".gpupack/wheels"))
    ap.add_argument("--site", type=Path, default=Path(tempfile.gettempdir()) / "studio-site")
    ap.add_argument("--features", type=Path, default=None, help="FD feature net weights")
    ap.add_argument("--clip", type=Path, default=None, help="mini-CLIP for R-precision")
    ap.add_argument("--out", type=Path, required=True, help="exports, log, eval ($OUT)")
    ap.add_argument(
        "--state-dir", type=Path, default=Path(tempfile.gettempdir()) / "studio-device-run"
    )
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training model")
    ap.add_argument("--size", choices=sorted(SIZES), default="wide")
    ap.add_argument("--width", type=int, nargs=3, default=None, help="block widths (overrides)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--minutes", type=float, default=7.5, help="training wall-clock budget")
    ap.add_argument(
        "--schedule-minutes",
        type=float,
        default=None,
        help="length of the lr cosine (default: --minutes)",
    )
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--lr-min", type=float, default=3e-5)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--drop", type=float, default=0.1, help="caption dropout probability")
    ap.add_argument("--export-minutes", type=float, default=1.5)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-n", type=int, default=256, help="samples for FD (0: no final eval)")
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    return ap


def _lr(step: int, trained_s: float, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    total = 60 * (args.schedule_minutes or args.minutes)
    t = min(1.0, trained_s / total)
    return args.lr_min + 0.5 * (args.lr - args.lr_min) * (1 + math.cos(math.pi * t))


def train(args: argparse.Namespace) -> dict:
    """Install, load, train for ``--minutes``, export, evaluate; returns a summary."""
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = (args.out / "log.txt").open("a")

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    install_wheels(args.wheels, args.site, log)
    from studio.models.archs.text_unet import DEFAULT_SCHEDULE, build_text_unet, save_text_unet
    from studio.training.device_pack import load
    from studio.training.run import save_state
    from studio.training.train_text2img import diffusion_loss, make_noise_schedule

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    pack = load(args.pack)
    data = DeviceData(pack, device)
    log(
        f"pack {args.pack}: {len(pack.train_images)} train, {len(pack.val_images)} val, "
        f"{len(pack.texts)} captions at {pack.dims}-d; loaded in "
        f"{time.perf_counter() - t_start:.1f} s; device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )

    widths = list(args.width) if args.width else SIZES[args.size]
    cfg = unet_config(widths, pack.dims)
    schedule = dict(DEFAULT_SCHEDULE)
    torch.manual_seed(args.seed)
    model = build_text_unet(cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    step, trained_s = 0, 0.0
    state_file = args.state_dir / "state.pt"
    key = json.dumps(cfg, sort_keys=True)
    st = None
    if state_file.is_file():
        st = torch.load(state_file, weights_only=True, map_location="cpu")
        if st["config"] != key:
            raise SystemExit(f"{state_file} is of another model; remove it or use --state-dir")
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
    model = model.to(device, memory_format=torch.channels_last).train()
    ema = ema.to(device, memory_format=torch.channels_last).eval()
    # built after the move: a fused optimiser checks its parameters' device; loading its state
    # puts every tensor where its parameter is
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, **fused)
    if st is not None:
        opt.load_state_dict(st["optim"])
        step, trained_s = int(st["step"]), float(st["trained_s"])
        log(f"resumed at step {step} ({trained_s / 60:.2f} min trained)")
        del st
    params = sum(p.numel() for p in model.parameters())
    log(
        f"model widths {widths} context {pack.dims}: {params / 1e6:.2f} M params; batch "
        f"{args.batch}, bf16 {args.bf16}, compile {args.compile}"
    )
    forward = torch.compile(model) if args.compile else model
    sched = make_noise_schedule(schedule)
    sched.alphas_cumprod = sched.alphas_cumprod.to(device)
    n_t = schedule["num_train_timesteps"]
    gen = torch.Generator(device).manual_seed(args.seed * 1000 + step)
    ema_p, model_p = list(ema.parameters()), list(model.parameters())

    # fixed validation batch: the val images with their first caption, fixed t and noise
    g = torch.Generator().manual_seed(1234)
    v_n = min(512, len(pack.val_images))
    v_x = torch.from_numpy(pack.val_images[:v_n]).permute(0, 3, 1, 2).float() / 127.5 - 1
    v_c = torch.from_numpy(pack.val_caption_ids[:v_n, 0])
    v_t = torch.randint(0, n_t, (v_n,), generator=g)
    v_noise = torch.randn(v_x.shape, generator=g)

    def val_loss() -> float:
        total = 0.0
        with torch.inference_mode():
            for i in range(0, v_n, 256):
                s = slice(i, i + 256)
                x0 = v_x[s].to(device).contiguous(memory_format=torch.channels_last)
                c = v_c[s].to(device)
                loss = diffusion_loss(
                    ema,
                    sched,
                    x0,
                    data.tokens[c],
                    data.mask[c],
                    v_t[s].to(device),
                    v_noise[s].to(device),
                    args.bf16,
                )
                total += float(loss) * len(x0)
        return total / max(1, v_n)

    def export(final: bool, trained: float) -> None:
        state = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optim": opt.state_dict(),
            "step": step,
            "trained_s": trained,
            "config": key,
        }
        save_state(state_file, state)
        folded = fold_projection(ema, pack.projection)
        meta = {
            "steps": step,
            "wall_minutes": f"{trained / 60:.2f}",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "data": f"device_pack ({pack.dims}-d MiniLM projection folded into to_k/to_v)",
            "batch": args.batch,
        }
        save_text_unet(folded, args.out / EXPORT_NAME, schedule, meta)
        log(f"{'final ' if final else ''}export at step {step} -> {args.out / EXPORT_NAME}")

    state_file.parent.mkdir(parents=True, exist_ok=True)
    budget = 60 * args.minutes
    loss_sum = torch.zeros((), device=device)
    n_sum, t_lap, t_export = 0, time.perf_counter(), time.perf_counter()
    t_loop = time.perf_counter()
    while time.perf_counter() - t_loop < budget:
        if args.max_steps is not None and step >= args.max_steps:
            break
        lr = _lr(step, trained_s + time.perf_counter() - t_loop, args)
        for group in opt.param_groups:
            group["lr"] = lr
        x0, tok, msk = data.batch(args.batch, args.drop, gen)
        t = torch.randint(0, n_t, (args.batch,), device=device, generator=gen)
        noise = torch.randn(x0.shape, device=device, generator=gen)
        noise = noise.contiguous(memory_format=torch.channels_last)
        loss = diffusion_loss(forward, sched, x0, tok, msk, t, noise, args.bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model_p, 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_p, [p.detach() for p in model_p], 1.0 - decay)
        loss_sum += loss.detach()
        n_sum += 1
        if step % args.log_every == 0:
            dt = time.perf_counter() - t_lap
            log(
                f"step {step} loss {float(loss_sum) / n_sum:.5f} lr {lr:.2e} "
                f"{n_sum * args.batch / dt:.0f} img/s"
            )
            loss_sum.zero_()
            n_sum, t_lap = 0, time.perf_counter()
        if time.perf_counter() - t_export > 60 * args.export_minutes:
            export(False, trained_s + time.perf_counter() - t_loop)
            t_export = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    loop_s = time.perf_counter() - t_loop
    trained_s += loop_s
    log(f"trained {loop_s:.0f} s this run, {trained_s / 60:.2f} min in all, step {step}")
    export(True, trained_s)
    summary: dict[str, Any] = {"step": step, "params": params, "trained_minutes": trained_s / 60}
    summary["val_loss_ema"] = round(val_loss(), 5)
    log(f"val loss (EMA, fixed t and noise) {summary['val_loss_ema']}")
    if args.eval_n > 0:
        summary |= final_eval(ema, schedule, pack, data, args, log)
    summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
    (args.out / "eval.json").write_text(json.dumps(summary, indent=1))
    log(f"done in {summary['total_seconds']} s: {json.dumps(summary)}")
    log_file.close()
    return summary


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
