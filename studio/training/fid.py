"""A Fréchet distance for 64x64 emoji on features of a small network we train ourselves.

No downloaded Inception weights: :class:`FeatureNet` is a 4-stage CNN trained on the emoji
*train* split to predict three labels at once from the pixels: the Unicode category (10 classes
incl. "Unknown"), the subcategory (~100) and the art style (Noto / Twemoji). The 128-d embedding
before the heads (after a ReLU) is the feature used for the distance. Inputs are shifted by up to
4 px (white fill) while training, so the features do not hinge on exact placement.

Distance: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)`` over the features of two image sets,
computed with a symmetric eigen-decomposition (no scipy).

    python -m studio.training.fid train --out checkpoints/studio-emoji-features.safetensors
    python -m studio.training.fid floor            # FD(val, train) and FD(val, blurred train)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from studio.paths import data_cache_dir
from studio.training.emoji import load_split

DATA = data_cache_dir() / "emoji"
DEFAULT_WEIGHTS = (
    Path(__file__).resolve().parents[2] / "checkpoints/studio-emoji-features.safetensors"
)
FEATURE_DIM = 128


class FeatureNet(nn.Module):
    """(N,3,64,64) float32 in [0,1] -> (N,128) features; heads give the three label logits."""

    def __init__(self, n_cat: int = 10, n_sub: int = 128, n_style: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((3, 16), (16, 32), (32, 64), (64, 128)):
            layers += [
                nn.Conv2d(cin, cout, 3, 1, 1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 2, 1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers)
        self.embed = nn.Linear(128, FEATURE_DIM)
        self.cat = nn.Linear(FEATURE_DIM, n_cat)
        self.sub = nn.Linear(FEATURE_DIM, n_sub)
        self.style = nn.Linear(FEATURE_DIM, n_style)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x * 2.0 - 1.0).mean(dim=(2, 3))
        return torch.relu(self.embed(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.cat(f), self.sub(f), self.style(f)


def load_feature_net(path: Path = DEFAULT_WEIGHTS) -> FeatureNet:
    state = load_file(str(path))
    net = FeatureNet(
        int(state["cat.weight"].shape[0]),
        int(state["sub.weight"].shape[0]),
        int(state["style.weight"].shape[0]),
    )
    net.load_state_dict(state, strict=True)
    return net.eval()


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W,3) -> float32 (N,3,H,W) in [0,1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


@torch.inference_mode()
def features(net: FeatureNet, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """float64 (N,128) features of uint8 (N,64,64,3) images."""
    out = [net.features(to_tensor(images[i : i + batch])) for i in range(0, len(images), batch)]
    return torch.cat(out).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` (N,D) and ``b`` (M,D)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1)  # same spectrum as S1 S2
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


def label_vocab(labels: list[dict]) -> tuple[list[str], list[str]]:
    cats = sorted({lb["category"] for lb in labels})
    subs = sorted({lb["subcategory"] for lb in labels})
    return cats, subs


def targets(labels: list[dict], cats: list[str], subs: list[str]) -> torch.Tensor:
    """(N,3) int64: category, subcategory (unknown ones -> -100, ignored), style."""
    ci, si = {c: i for i, c in enumerate(cats)}, {s: i for i, s in enumerate(subs)}
    rows = [
        (ci.get(lb["category"], -100), si.get(lb["subcategory"], -100), lb["style"] == "twemoji")
        for lb in labels
    ]
    return torch.tensor(rows, dtype=torch.int64)


def shift_white(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` px, filling with white."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4, value=1.0)
    offs = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    return torch.stack(
        [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offs.tolist())]
    )


def accuracy(net: FeatureNet, images: np.ndarray, tgt: torch.Tensor) -> list[float]:
    net.eval()
    with torch.inference_mode():
        logits = [
            torch.cat(z)
            for z in zip(
                *(net(to_tensor(images[i : i + 256])) for i in range(0, len(images), 256)),
                strict=True,
            )
        ]
    accs = []
    for k, lg in enumerate(logits):
        valid = tgt[:, k] >= 0
        accs.append(float((lg.argmax(1)[valid] == tgt[valid, k]).float().mean()))
    return accs


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x_tr, lb_tr = load_split(args.data, "train")
    x_va, lb_va = load_split(args.data, "val")
    cats, subs = label_vocab(lb_tr)
    t_tr, t_va = targets(lb_tr, cats, subs), targets(lb_va, cats, subs)
    net = FeatureNet(len(cats), len(subs), 2)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = args.epochs * (len(x_tr) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    ce = nn.CrossEntropyLoss(ignore_index=-100)
    started, step = time.time(), 0
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for i in range(0, len(order) - args.batch + 1, args.batch):
            idx = order[i : i + args.batch]
            x = shift_white(to_tensor(x_tr[idx.numpy()]), 4, gen)
            lc, ls, lt = net(x)
            t = t_tr[idx]
            loss = ce(lc, t[:, 0]) + ce(ls, t[:, 1]) + ce(lt, t[:, 2])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, step = total + float(loss.detach()), step + 1
        acc = accuracy(net, x_va, t_va)
        print(
            f"epoch {epoch + 1} loss {total / (len(x_tr) // args.batch):.3f} val acc "
            f"cat {acc[0]:.3f} sub {acc[1]:.3f} style {acc[2]:.3f} "
            f"({time.time() - started:.0f} s)",
            flush=True,
        )
    net.eval()
    summary = {
        "epochs": args.epochs,
        "steps": step,
        "seconds": round(time.time() - started),
        "train_acc": accuracy(net, x_tr, t_tr),
        "val_acc": accuracy(net, x_va, t_va),
        "categories": cats,
        "subcategories": len(subs),
    }
    sd = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    meta = {"arch": "FeatureNet", "summary": json.dumps(summary)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(args.out), metadata=meta)
    args.out.chmod(0o644)
    return summary


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(im, (0, 0), sigma) for im in images])


def floor(args: argparse.Namespace) -> dict:
    """FD(val, train) — the floor a perfect generator would reach — and sensitivity checks."""
    torch.set_num_threads(args.threads)
    net = load_feature_net(args.weights)
    x_tr, _ = load_split(args.data, "train")
    x_va, _ = load_split(args.data, "val")
    f_tr, f_va = features(net, x_tr), features(net, x_va)
    rng = np.random.default_rng(0)
    noisy = np.clip(x_tr + rng.normal(0, 8, x_tr.shape), 0, 255).astype(np.uint8)
    out = {
        "fd_val_train": frechet_distance(f_tr, f_va),
        "fd_val_train_blur1": frechet_distance(features(net, blur(x_tr, 1.0)), f_va),
        "fd_val_train_blur2": frechet_distance(features(net, blur(x_tr, 2.0)), f_va),
        "fd_val_train_noise8": frechet_distance(features(net, noisy), f_va),
        "n_train": len(x_tr),
        "n_val": len(x_va),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("command", choices=("train", "floor"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    result = train(args) if args.command == "train" else floor(args)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
