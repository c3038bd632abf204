"""Train the miniature CLIP (:mod:`studio.models.archs.mini_clip`) on the captioned data pack.

Loss: symmetric InfoNCE over a batch of images, each with one caption drawn at random from its
caption list, against the captions' MiniLM pooled vectors (read from the pack of
:mod:`studio.training.captioned`, so no text encoder runs while training). Two images of one
concept (the same ``canonical`` caption, e.g. the Noto and Twemoji art of one emoji), or two
images that drew the same caption string ("flag"), are positives of each other's captions, so
the loss never pushes apart a pair that matches.
Augmentation: a random shift (up to 6 %) and scale (0.85-1.1) on white, and light colour jitter
(brightness, contrast, saturation).

bf16 autocast and channels-last on CPU and CUDA alike. Resumable (``RUNS/<name>/state.pt``, see
:mod:`studio.training.run`); every save exports the weights with the caption bank Describe ranks
(the distinct canonical captions of the pack, embedded through the current text map).

    nohup python -m studio.training.train_clip --data $STUDIO_CACHE/captioned --bf16 \
        --export checkpoints/studio-mini-clip.safetensors > /dev/null 2>&1 &
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from studio.atomic_write import write_bytes_atomic
from studio.models.archs.mini_clip import MiniClip
from studio.paths import data_cache_dir
from studio.training.captioned import CaptionedPack, load_captioned
from studio.training.eval_adherence import r_precision
from studio.training.run import Meter, Run, add_run_args, lr_at, set_lr

DATA = data_cache_dir() / "captioned"
MAX_BANK = 8000


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,64,64,3] -> float32 [N,3,64,64] in [0,1], channels-last."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shift/scale on a white background and light colour jitter, per image."""
    n = x.shape[0]
    u = torch.rand(n, 6, generator=gen)
    scale = 0.85 + 0.25 * u[:, 0]
    shift = (u[:, 1:3] - 0.5) * 0.12  # in [-1, 1] units: up to 6 % of the side
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # sample (x - 1) so the zero padding outside the picture is white
    x = F.grid_sample(x - 1.0, grid, mode="bilinear", align_corners=False) + 1.0
    bright = (1.0 + (u[:, 3] - 0.5) * 0.2).view(n, 1, 1, 1)
    contrast = (1.0 + (u[:, 4] - 0.5) * 0.2).view(n, 1, 1, 1)
    sat = (1.0 + (u[:, 5] - 0.5) * 0.3).view(n, 1, 1, 1)
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * sat
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    return (x * bright).clamp(0.0, 1.0).contiguous(memory_format=torch.channels_last)


def positives(canonical: torch.Tensor, caption: torch.Tensor) -> torch.Tensor:
    """bool [B, B]: image ``i`` and caption ``j`` match when they are of one concept or the
    caption is the same string (a shared keyword caption such as "flag")."""
    return (canonical[:, None] == canonical[None, :]) | (caption[:, None] == caption[None, :])


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, positive: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE over unit vectors [B, D]; where ``positive`` (bool [B, B], symmetric,
    true on the diagonal) has several matches the target spreads evenly over them."""
    logits = scale * image @ text.T
    target = positive.float() / positive.float().sum(1, keepdim=True)
    loss_i = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(target * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return 0.5 * (loss_i + loss_t)


@torch.inference_mode()
def embed_images(model: MiniClip, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = [
        model.encode_image(to_tensor(images[i : i + batch])) for i in range(0, len(images), batch)
    ]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.text_proj.out_features)


def bank_of(pack: CaptionedPack, limit: int = MAX_BANK) -> list[int]:
    """The caption ids Describe ranks: distinct canonical captions of both splits (train
    first), non-empty, at most ``limit``."""
    seen: dict[int, None] = {}
    for c in np.concatenate([pack.train.canonical, pack.val.canonical]).tolist():
        if c > 0 and pack.bank[c].strip():
            seen.setdefault(c, None)
    return list(seen)[:limit]


def attach_bank(model: MiniClip, pack: CaptionedPack, ids: list[int]) -> None:
    with torch.inference_mode():
        emb = model.encode_text(pack.pooled[ids].float())
    model.attach_bank([pack.bank[i] for i in ids], emb)


def val_scores(model: MiniClip, pack: CaptionedPack, seed: int = 0) -> dict[str, float]:
    """R-precision of validation images against their canonical captions, and against their
    held-out captions (``eval.json`` entries whose caption is in the pack) when there are any."""
    val = pack.val
    with torch.inference_mode():
        img = embed_images(model, val.images)
        canon = model.encode_text(pack.pooled[val.canonical].float())
    scores = {
        "canonical": r_precision(img, canon, np.random.default_rng(seed), groups=val.canonical)
    }
    index = {c: i for i, c in enumerate(pack.bank)}
    rows = [(e["index"], index[e["caption"]]) for e in pack.eval if e["caption"] in index]
    if len(rows) >= 2:
        at = [r[0] for r in rows]
        with torch.inference_mode():
            txt = model.encode_text(pack.pooled[[r[1] for r in rows]].float())
        rng = np.random.default_rng(seed)
        scores["held_out"] = r_precision(img[at], txt, rng, groups=val.canonical[at])
    return scores


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--name", default="mini-clip")
    ap.add_argument("--widths", default="24,48,96,192", help="channels of the four stages")
    ap.add_argument("--text-map", choices=("linear", "identity"), default="linear")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-min", type=float, default=5e-5)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    add_run_args(ap, data=DATA, save_minutes=5.0, log_every=25, eval_every=250)
    return ap


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final step and history."""
    run = Run.start(args)
    run.catch_signals()
    widths = tuple(int(w) for w in args.widths.split(","))
    cfg = {
        "widths": list(widths),
        "text_map": args.text_map,
        "batch": args.batch,
        "steps": args.steps,
        "lr": args.lr,
        "bf16": args.bf16,
        "data": str(args.data),
    }
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    model = MiniClip(widths)
    model.text_proj.requires_grad_(args.text_map == "linear")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    rng = np.random.default_rng(args.seed)
    step, wall, history = run.resume_one(cfg, ("widths", "text_map"), model, opt, rng, args.init)
    model = model.to(device, memory_format=torch.channels_last)
    aug_gen = torch.Generator().manual_seed(args.seed + step)
    pack = load_captioned(args.data)
    tr = pack.train
    pooled = pack.pooled.float().to(device)
    bank_ids = bank_of(pack)
    run.log(
        f"config {json.dumps(cfg)} params={sum(p.numel() for p in model.parameters())} "
        f"{len(tr.images)} train / {len(pack.val.images)} val images, "
        f"{len(pack.bank)} captions, bank {len(bank_ids)}, device {device}"
    )

    def evaluate() -> None:
        scores = val_scores(model.cpu(), pack)
        model.to(device)
        history.append({"step": step, "r_precision_val": scores, "wall_min": wall / 60})
        shown = ", ".join(f"{k} {100 * v:.1f} %" for k, v in scores.items())
        run.log(f"eval step {step}: R-precision of val images among 100 captions: {shown}")

    def checkpoint() -> None:
        model.cpu()
        attach_bank(model, pack, bank_ids)
        meta = {
            "arch": "mini-clip",
            "steps": step,
            "wall_minutes": f"{wall / 60:.1f}",
            "config": json.dumps(cfg),
            "last_eval": json.dumps(history[-1:]),
        }
        state = {"model": model.state_dict(), "optim": opt.state_dict()}
        run.save(state | run.progress(step, wall, rng, cfg, history), model, meta, None)
        if args.export is not None:
            export(model, args.export, meta)
        model.to(device)

    run.start_clock()
    meter = Meter(2)  # loss, temperature
    model.train()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    while step < args.steps and not run.stop:
        set_lr(lr_at(step, args.steps, args.lr, args.lr_min, args.warmup), opt)
        idx = rng.integers(0, len(tr.images), args.batch)
        caps = torch.from_numpy(pack.pick_captions(tr.caption_ids[idx], rng))
        positive = positives(torch.from_numpy(tr.canonical[idx]), caps).to(device)
        x = augment(to_tensor(tr.images[idx]), aug_gen).to(device)
        with autocast:
            img = model.encode_image(x)
            txt = model.encode_text(pooled[caps.to(device)])
        loss = contrastive_loss(img.float(), txt.float(), model.scale(), positive)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        meter.add(float(loss.detach()), float(model.scale().detach()))
        if meter.due(step, args.log_every, args.steps):
            sums, n_acc, dt = meter.lap()
            wall += dt
            run.log(
                f"step {step} loss {sums[0] / n_acc:.4f} scale {sums[1] / n_acc:.1f} "
                f"lr {opt.param_groups[0]['lr']:.2e} {n_acc / dt:.2f} steps/s"
            )
        if run.tick(step, evaluate, checkpoint):
            break
    wall += meter.elapsed()
    run.finish(step, history, evaluate, checkpoint)
    return {"step": step, "history": history}


def export(model: MiniClip, path: Path, meta: dict) -> None:
    """The shipped file: weights (float32) and the caption bank, atomically."""
    from safetensors.torch import save

    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    sd |= model.bank_state()
    write_bytes_atomic(path, save(sd, metadata={k: str(v) for k, v in meta.items()}))


def main(argv: list[str] | None = None) -> None:
    train(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
