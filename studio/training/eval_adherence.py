"""Prompt adherence judged by the miniature CLIP: R-precision, and a sheet to look at.

R-precision here: for each query image, its own caption is ranked among 100 captions (itself
and 99 others drawn at random from the other queries, never one of the same concept) by the
mini-CLIP's cosine similarity; the score is the fraction ranked first (a tie counts as a miss).
Chance is 1 %. Reported for

* **ceiling**: real validation images against their held-out captions;
* **floor**: the same images with their captions shuffled among them, and uniform noise images;
* **generated**: images ``TextDiffusion`` made from the held-out captions and from paraphrases
  never seen in training (20 steps of DPM-Solver++, one fixed seed per prompt).

Text vectors come from the pack where a caption is in it, else from the MiniLM encoder (the
paraphrases). Without the text-to-image checkpoint only ceiling and floor are printed.

    python -m studio.training.eval_adherence --n 200 --sheet sheet.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from studio.paths import checkpoints_dir, data_cache_dir

DISTRACTORS = 99
CLIP_FILE = "studio-mini-clip.safetensors"
T2I_FILE = "studio-text2img.safetensors"


def ranked_first(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    rng: np.random.Generator,
    distractors: int = DISTRACTORS,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Per row ``i``, whether ``text_emb[i]`` scores strictly above ``distractors`` others
    (rows ``j`` with ``groups[j] != groups[i]``, or ``j != i`` without groups; fewer when fewer
    exist) for ``image_emb[i]``. Embeddings are unit vectors [N, D]; returns bool [N]."""
    n = len(image_emb)
    if n != len(text_emb) or n < 2:
        raise ValueError("need at least two (image, caption) pairs of equal count")
    sims = (image_emb.float() @ text_emb.float().T).numpy()
    keys = np.arange(n) if groups is None else np.asarray(groups)
    hits = np.zeros(n, bool)
    for i in range(n):
        others = np.flatnonzero(keys != keys[i])
        if len(others) == 0:
            raise ValueError("every pair is of the same concept: no distractors")
        pick = rng.choice(others, size=min(distractors, len(others)), replace=False)
        hits[i] = sims[i, i] > sims[i, pick].max()
    return hits


def r_precision(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    rng: np.random.Generator,
    distractors: int = DISTRACTORS,
    groups: np.ndarray | None = None,
) -> float:
    """The fraction of :func:`ranked_first`."""
    return float(ranked_first(image_emb, text_emb, rng, distractors, groups).mean())


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` with no fixed point (n >= 2): one random n-cycle."""
    order = rng.permutation(n)
    perm = np.empty(n, np.int64)
    perm[order] = np.roll(order, -1)
    return perm


def load_clip(path: Path):
    """The mini-CLIP module (eval mode) from a weight file, through the architecture list."""
    from studio.models.loading import load_weights

    return load_weights(path).module


def text_vectors(texts: list[str], pack, cache: dict) -> torch.Tensor:
    """MiniLM pooled vectors [N, 384]: from the pack when a caption is in it, else encoded."""
    index = {c: i for i, c in enumerate(pack.bank)}
    missing = [t for t in dict.fromkeys(texts) if t not in index and t not in cache]
    if missing:
        from studio.models.text_encoder import TextEncoder

        if "encoder" not in cache:
            cache["encoder"] = TextEncoder()
        cache.update(zip(missing, cache["encoder"].encode(missing).pooled, strict=True))
    return torch.stack([pack.pooled[index[t]].float() if t in index else cache[t] for t in texts])


def generate(
    model, prompts: list[str], seeds: list[int], steps: int, guidance: float
) -> np.ndarray:
    """One image per prompt, uint8 [N, H, W, 3], from a :class:`DenoiseBackend`."""
    from studio.models.diffusion_api import DenoiseRequest

    out = []
    for prompt, seed in zip(prompts, seeds, strict=True):
        request = DenoiseRequest(
            prompt=prompt, seed=seed, steps=steps, guidance=guidance, sampler="dpm++"
        )
        run = model.denoise(request)
        while True:
            try:
                next(run)
            except StopIteration as stop:
                out.append(stop.value[0])
                break
    return np.stack(out)


def sheet(
    images: np.ndarray, prompts: list[str], marks: list[bool], path: Path, cols: int = 8
) -> None:
    """A grid of images (shown at 2x) with each prompt written under it, a green frame where
    the mini-CLIP ranked the prompt first and a red one where it did not."""
    from PIL import Image, ImageDraw

    side, text_h, pad = 128, 40, 6
    rows = -(-len(images) // cols)
    canvas = Image.new(
        "RGB", (cols * (side + pad) + pad, rows * (side + text_h + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for k, (image, prompt, ok) in enumerate(zip(images, prompts, marks, strict=True)):
        x = pad + (k % cols) * (side + pad)
        y = pad + (k // cols) * (side + text_h + pad)
        canvas.paste(Image.fromarray(image).resize((side, side), Image.NEAREST), (x, y))
        draw.rectangle((x - 2, y - 2, x + side + 1, y + side + 1), outline="green" if ok else "red")
        words, lines = prompt.split(), [""]
        for w in words:
            if len(lines[-1]) + len(w) + 1 > 21 and lines[-1]:
                lines.append("")
            lines[-1] = (lines[-1] + " " + w).strip()
        draw.multiline_text((x, y + side + 2), "\n".join(lines[:3]), fill="black", spacing=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def evaluate(args: argparse.Namespace) -> dict:
    from studio.training.captioned import load_captioned
    from studio.training.train_clip import embed_images

    torch.set_num_threads(args.threads)
    pack = load_captioned(args.data)
    clip = load_clip(args.clip)
    entries = [e for e in pack.eval if 0 <= e["index"] < len(pack.val.images)]
    if len(entries) > args.n:  # a seeded subset spread over the sources, not the first n
        keep = np.random.default_rng(args.seed).choice(len(entries), args.n, replace=False)
        entries = [entries[i] for i in sorted(keep)]
    if len(entries) < 2:
        raise SystemExit(f"{args.data}: eval.json has fewer than two usable entries")
    groups = pack.val.canonical[[e["index"] for e in entries]]
    cache: dict = {}
    with torch.inference_mode():
        cap = clip.encode_text(text_vectors([e["caption"] for e in entries], pack, cache))
        par = clip.encode_text(text_vectors([e["paraphrase"] for e in entries], pack, cache))
    real = embed_images(clip, pack.val.images[[e["index"] for e in entries]])
    noise_rng = np.random.default_rng(args.seed)
    noise = noise_rng.integers(0, 256, (len(entries), 64, 64, 3), dtype=np.uint8)
    shuffled = derangement(len(entries), np.random.default_rng(args.seed))

    def score(images: torch.Tensor, texts: torch.Tensor) -> float:
        return r_precision(images, texts, np.random.default_rng(args.seed), groups=groups)

    rows = {
        "real val images, held-out captions (ceiling)": score(real, cap),
        "real val images, paraphrases": score(real, par),
        "shuffled pairs (floor)": score(real[shuffled], cap),
        "uniform noise images (floor)": score(embed_images(clip, noise), cap),
    }
    out: dict = {"n": len(entries), "distractors": min(DISTRACTORS, len(entries) - 1)}
    print_table(rows, out)
    t2i = args.t2i if args.t2i is not None else checkpoints_dir() / T2I_FILE
    if not args.real_only and t2i.is_file():
        from studio.models.text_diffusion import TextDiffusion

        dtype = torch.bfloat16 if args.bf16 else torch.float32
        out["t2i"] = {"path": str(t2i), "mtime": time.ctime(t2i.stat().st_mtime)}
        model = TextDiffusion.load(t2i, torch.device("cpu"), dtype)
        out["t2i"]["metadata"] = {k: v[:200] for k, v in model.metadata.items()}
        seeds = [args.seed + k for k in range(len(entries))]
        started = time.perf_counter()
        made_cap = generate(
            model, [e["caption"] for e in entries], seeds, args.steps, args.guidance
        )
        made_par = generate(
            model, [e["paraphrase"] for e in entries], seeds, args.steps, args.guidance
        )
        out["seconds_per_image"] = (time.perf_counter() - started) / (2 * len(entries))
        if args.save_images is not None:
            np.savez(args.save_images, captions=made_cap, paraphrases=made_par)
        gen_cap, gen_par = embed_images(clip, made_cap), embed_images(clip, made_par)
        rows["generated from held-out captions"] = score(gen_cap, cap)
        rows["generated from paraphrases"] = score(gen_par, par)
        out |= {"guidance": args.guidance, "steps": args.steps, "bf16": args.bf16}
        print_table(rows, out)
        if args.sheet is not None:
            # spread over the entries (neighbours are often one concept in several skin tones)
            at = np.unique(
                np.linspace(0, len(entries) - 1, min(args.sheet_n, len(entries))).astype(int)
            )
            rng = np.random.default_rng(args.seed)
            marks = ranked_first(gen_par, par, rng, groups=groups)[at].tolist()
            sheet(made_par[at], [entries[i]["paraphrase"] for i in at], marks, args.sheet)
            out["sheet"] = str(args.sheet)
    out["r_precision"] = rows
    return out


def print_table(rows: dict[str, float], out: dict) -> None:
    ceiling = rows["real val images, held-out captions (ceiling)"]
    candidates = out["distractors"] + 1
    print(
        f"R-precision among {candidates} captions, n={out['n']} (chance {100 / candidates:.1f} %)"
    )
    for name, value in rows.items():
        share = f"({value / ceiling:.2f} of ceiling)" if ceiling > 0 else ""
        print(f"  {name:48s} {100 * value:6.1f} %   {share}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=data_cache_dir() / "captioned")
    ap.add_argument("--clip", type=Path, default=checkpoints_dir() / CLIP_FILE)
    ap.add_argument("--t2i", type=Path, default=None, help="text-to-image weights")
    ap.add_argument("--n", type=int, default=500, help="evaluation entries used (at most)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0, help="prompt k is generated with seed + k")
    ap.add_argument("--bf16", action="store_true", help="generate under bf16 autocast")
    ap.add_argument("--real-only", action="store_true", help="ceiling and floor only")
    ap.add_argument("--save-images", type=Path, default=None, help="generated images (.npz)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sheet", type=Path, default=None, help="write a sheet PNG here")
    ap.add_argument("--sheet-n", type=int, default=32)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    out = evaluate(args)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
