"""The captioned 64x64 data set for Studio's text-to-image model, and its reader.

Sources (see :mod:`studio.training.captioned_sources` and ``checkpoints/DATA-captioned.md``):
Noto and Twemoji emoji named by CLDR, openclipart titles and keywords, Tux Paint stamps with
their sentences and Papirus icons. Pack layout in ``OUT`` (default ``$STUDIO_CACHE/captioned``)::

    train.npz, val.npz    images uint8 [N,64,64,3]; caption_ids int32 [N,K] (indices into the
                          bank, -1 = unused); source uint8 [N]; canonical int32 [N]
    captions.json         the caption bank, M strings; index 0 is "" (the empty prompt)
    captions.safetensors  MiniLM encodings: tokens float16 [M,16,384] (first 16 token states,
                          zero on padding), mask uint8 [M,16], pooled float16 [M,384] (unit norm)
    eval.json             [{"index", "caption", "paraphrase"}] for validation images
    summary.json, READY   counts and timings; READY says "emoji" or "full"

The split is by subject (``sha1(subject) % 20 == 0`` is validation), so skin tones, both emoji
styles and one openclipart title land together. No validation caption is a training caption,
and no paraphrase is in the bank. The pack is written to a temporary sibling folder and swapped
in, so a reader never sees a half-written pack::

    python -m studio.training.captioned --out $STUDIO_CACHE/captioned [--emoji-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studio.paths import data_cache_dir
from studio.training import caption_text as ct
from studio.training import captioned_sources as cs

MAX_VARIANTS = 8
#: caption variants per picture by source (the bank must stay near 50k strings to encode in
#: minutes); pictures with a skin-tone modifier get SKIN_TONE_VARIANTS, being near-duplicates
VARIANTS = {0: 5, 1: 5, 2: 5, 3: 6, 4: 4}
SKIN_TONE_VARIANTS = 3
TOKENS = 16
EVAL_COUNT = 500
#: encode(strings) -> (tokens float [M,16,384], mask bool [M,16], pooled float [M,384])
Encoder = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def is_val(subject: str) -> bool:
    """About 5% of subjects, stable across runs: the split depends on the subject text only."""
    key = " ".join(subject.lower().split())
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % 20 == 0


@dataclass(frozen=True)
class CaptionedSplit:
    images: np.ndarray  # uint8 [N,64,64,3]
    caption_ids: np.ndarray  # int32 [N,K], -1 = unused
    source: np.ndarray  # uint8 [N], index into SOURCES
    canonical: np.ndarray  # int32 [N]


@dataclass(frozen=True)
class CaptionedPack:
    """What :func:`load_captioned` returns. Encodings are indexed by bank position."""

    train: CaptionedSplit
    val: CaptionedSplit
    bank: list[str]
    tokens: torch.Tensor  # float16 [M,16,384]
    mask: torch.Tensor  # bool [M,16]
    pooled: torch.Tensor  # float16 [M,384]
    eval: list[dict]
    sources: tuple[str, ...]

    def pick_captions(self, caption_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random valid caption index per row of ``caption_ids`` [B,K] -> int64 [B]."""
        valid = caption_ids >= 0
        counts = valid.sum(axis=1)
        choice = (rng.random(len(caption_ids)) * counts).astype(np.int64)
        return np.take_along_axis(caption_ids, choice[:, None], axis=1)[:, 0].astype(np.int64)


def load_captioned(folder: str | Path | None = None) -> CaptionedPack:
    """Read a pack written by :func:`write_pack` (default ``$STUDIO_CACHE/captioned``)."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else data_cache_dir() / "captioned"
    splits = {}
    for name in ("train", "val"):
        with np.load(folder / f"{name}.npz") as z:
            splits[name] = CaptionedSplit(
                z["images"], z["caption_ids"], z["source"], z["canonical"]
            )
    enc = load_file(str(folder / "captions.safetensors"))
    bank = json.loads((folder / "captions.json").read_text())
    evals = json.loads((folder / "eval.json").read_text())
    return CaptionedPack(
        splits["train"], splits["val"], bank, enc["tokens"], enc["mask"].bool(),
        enc["pooled"], evals, cs.SOURCES,
    )  # fmt: skip


def variant_count(p: cs.Picture) -> int:
    return SKIN_TONE_VARIANTS if "skin tone" in p.name else VARIANTS.get(p.source, MAX_VARIANTS)


def assign_captions(pictures: list[cs.Picture]) -> tuple[list[list[str]], list[bool]]:
    """Caption variants of every picture and its split, with the held-out guarantee: a string
    used by a validation picture is never used by a training picture (the validation copy of a
    shared keyword caption is dropped; a validation canonical caption is dropped from train)."""
    val = [is_val(p.subject) for p in pictures]
    variants = [
        ct.train_variants(
            p.name, p.keywords, p.style, p.subject, sentence=p.sentence, count=variant_count(p)
        )
        for p in pictures
    ]
    val_names = {vs[0] for vs, v in zip(variants, val, strict=True) if v}
    for i, v in enumerate(val):
        if not v:
            keep = [variants[i][0]] + [c for c in variants[i][1:] if c not in val_names]
            variants[i] = keep
    train_used = {c for vs, v in zip(variants, val, strict=True) if not v for c in vs}
    for i, v in enumerate(val):
        if v:
            variants[i] = [variants[i][0]] + [c for c in variants[i][1:] if c not in train_used]
    return variants, val


def eval_entries(
    pictures: list[cs.Picture],
    variants: list[list[str]],
    rows: list[int],
    bank: set[str],
    train_used: set[str],
) -> list[dict]:
    """Up to EVAL_COUNT held-out (caption, paraphrase) pairs, one per distinct caption."""
    out: list[dict] = []
    seen: set[str] = set()
    for index, i in enumerate(rows):
        p, name = pictures[i], variants[i][0]
        if name in seen or name in train_used:
            continue
        phrase = next((q for q in ct.paraphrase(name, p.style, p.subject) if q not in bank), "")
        if not phrase:
            continue
        seen.add(name)
        out.append({"index": index, "caption": name, "paraphrase": phrase})
    rng = np.random.default_rng(13)
    if len(out) > EVAL_COUNT:
        out = [out[j] for j in sorted(rng.choice(len(out), EVAL_COUNT, replace=False))]
    return out


def minilm_encoder(old: Path | None = None) -> Encoder:
    """MiniLM encodings in batches of 256 on 2 threads; prompts of at most 16 tokens are run at
    16 tokens (identical states: padding is masked), longer ones at 32 (pooled over all 32,
    the first 16 states kept). Strings already encoded in ``old`` (a previous pack) are reused."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from studio.models.text_encoder import TextEncoder, default_model_dir

    cached: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    if old is not None and (old / "captions.safetensors").is_file():
        enc = load_file(str(old / "captions.safetensors"))
        for j, text in enumerate(json.loads((old / "captions.json").read_text())):
            cached[text] = (enc["tokens"][j], enc["mask"][j].bool(), enc["pooled"][j])

    def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        torch.set_num_threads(2)
        todo = [t for t in texts if t not in cached]
        print(f"encoding {len(todo)} of {len(texts)} captions (others from the old pack)")
        t0 = time.perf_counter()
        if todo:
            tok = AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)
            lengths = [len(ids) for ids in tok(todo)["input_ids"]]
            for limit, group in ((TOKENS, [t for t, n in zip(todo, lengths, strict=True)
                                           if n <= TOKENS]),
                                 (32, [t for t, n in zip(todo, lengths, strict=True)
                                       if n > TOKENS])):  # fmt: skip
                if not group:
                    continue
                encoder = TextEncoder(max_tokens=limit, batch_size=256)
                result = encoder.encode(group)
                for j, text in enumerate(group):
                    cached[text] = (
                        result.tokens[j, :TOKENS].to(torch.float16),
                        result.mask[j, :TOKENS],
                        result.pooled[j].to(torch.float16),
                    )
        seconds = time.perf_counter() - t0
        print(f"encoded in {seconds:.0f} s ({1000 * seconds / max(1, len(todo)):.1f} ms each)")
        rows = [cached[t] for t in texts]
        return tuple(torch.stack(field) for field in zip(*rows, strict=True))  # type: ignore[return-value]

    return encode


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez(path, **arrays)  # images compress poorly and loading must be fast


def write_pack(pictures: Iterable[cs.Picture], out: Path, encode: Encoder, ready: str) -> dict:
    """Write the pack into ``out`` (swapped in whole) and return its summary."""
    pictures = list(pictures)
    start = time.perf_counter()
    variants, val = assign_captions(pictures)
    train_used = {c for vs, v in zip(variants, val, strict=True) if not v for c in vs}
    bank = ["", *sorted({c for vs in variants for c in vs} - {""})]
    index = {c: j for j, c in enumerate(bank)}
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    summary: dict = {"sources": list(cs.SOURCES), "bank": len(bank)}
    rows_of = {s: [i for i, v in enumerate(val) if v == (s == "val")] for s in ("train", "val")}
    for split, rows in rows_of.items():
        ids = np.full((len(rows), MAX_VARIANTS), -1, dtype=np.int32)
        for r, i in enumerate(rows):
            ids[r, : len(variants[i])] = [index[c] for c in variants[i]]
        _save_npz(
            tmp / f"{split}.npz",
            images=np.array([pictures[i].image for i in rows], np.uint8).reshape(-1, 64, 64, 3),
            caption_ids=ids,
            source=np.array([pictures[i].source for i in rows], dtype=np.uint8),
            canonical=np.array([index[variants[i][0]] for i in rows], dtype=np.int32),
        )
        summary[split] = {
            "count": len(rows),
            "per_source": dict(Counter(cs.SOURCES[pictures[i].source] for i in rows)),
            "per_style": dict(Counter(pictures[i].style for i in rows)),
            "subjects": len({pictures[i].subject for i in rows}),
            "mean_variants": round(float((ids >= 0).sum(1).mean()), 2) if rows else 0.0,
        }
    evals = eval_entries(pictures, variants, rows_of["val"], set(bank), train_used)
    (tmp / "eval.json").write_text(json.dumps(evals, indent=0, ensure_ascii=False))
    (tmp / "captions.json").write_text(json.dumps(bank, ensure_ascii=False))
    t0 = time.perf_counter()
    tokens, mask, pooled = encode(bank)
    summary["encode_seconds"] = round(time.perf_counter() - t0, 1)
    from safetensors.torch import save_file

    save_file(
        {
            "tokens": (tokens[:, :TOKENS] * mask[:, :TOKENS, None]).to(torch.float16).contiguous(),
            "mask": mask[:, :TOKENS].to(torch.uint8).contiguous(),
            "pooled": pooled.to(torch.float16).contiguous(),
        },
        str(tmp / "captions.safetensors"),
    )
    summary["eval"] = len(evals)
    summary["build_seconds"] = round(time.perf_counter() - start, 1)
    (tmp / "summary.json").write_text(json.dumps(summary, indent=1))
    (tmp / "READY").write_text(ready + "\n")
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return summary


def collect(cache: Path, emoji_only: bool, log: Callable[[str], None] = print) -> list:
    """Every picture of the chosen sources, with per-source read times logged."""
    pictures: list[cs.Picture] = []
    readers: list[tuple[str, Callable[[], Iterable[cs.Picture]]]] = [
        ("emoji", lambda: cs.emoji_pictures(cache))
    ]
    if not emoji_only:
        root = cs.fetch_debs(cache, (*cs.DEBS, cs.RSVG_DEB))
        rsvg = root / "usr/bin/rsvg-convert"
        readers += [
            ("openclipart", lambda: cs.openclipart_pictures(root, rsvg, cs.english_vocabulary())),
            ("tuxpaint", lambda: cs.tuxpaint_pictures(root, rsvg)),
            ("papirus", lambda: cs.papirus_pictures(root, rsvg)),
        ]
    for name, read in readers:
        t0 = time.perf_counter()
        got = []
        for picture in read():
            got.append(picture)
            if len(got) % 2000 == 0:
                log(f"{name}: {len(got)} pictures after {time.perf_counter() - t0:.0f} s")
        pictures += got
        log(f"{name}: {len(got)} pictures in {time.perf_counter() - t0:.0f} s")
    return pictures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=data_cache_dir() / "captioned")
    ap.add_argument("--cache", type=Path, default=data_cache_dir())
    ap.add_argument("--emoji-only", action="store_true", help="the first, emoji-only pack")
    args = ap.parse_args(argv)
    pictures = collect(args.cache, args.emoji_only)
    encode = minilm_encoder(args.out if args.out.exists() else None)
    summary = write_pack(pictures, args.out, encode, "emoji" if args.emoji_only else "full")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
