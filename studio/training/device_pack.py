"""One small file that carries the captioned text-to-image data to a lent GPU machine.

The full pack (:mod:`studio.training.captioned`) is 550 MB, mostly MiniLM token states; what
travels to a device machine is capped at 64 MiB with the code. This pack keeps, in one ``.npz``:

* every train and val image at 64x64, each as **lossless WebP** bytes (measured on 1,000 train
  images: WebP 2.4 KB, PNG 3.5 KB, zlib of the raw array 3.2 KB, xz 2.5 KB per image; decoding
  is exact and takes 0.2 ms per image);
* up to ``per_image`` caption ids per image (the canonical caption first), into a reduced bank;
* the bank's MiniLM token states **projected onto a ``dims``-d subspace** (uncentered PCA, i.e.
  the top right singular vectors of the token states, fitted here) and stored as int8 with one
  fp16 scale per token, ragged (real tokens only, no padding). The projection ``P`` [dims,384]
  travels too. Why uncentered: cross-attention reads the context only through bias-free
  ``to_k``/``to_v`` linears, so ``W @ (P x) == (W @ P) x`` and a model trained on projected
  tokens folds into an ordinary 384-d ``studio-text2img`` file (``fold_projection`` in
  :mod:`studio.training.device_run`): the shipped model then sees exactly what it trained on.
* the held-out eval pairs (caption and unseen paraphrase of a val image) with their reduced
  tokens and their pooled 384-d MiniLM vectors (for the mini-CLIP's R-precision).

    python -m studio.training.device_pack --src $STUDIO_CACHE/captioned \
        --out $STUDIO_CACHE/gpuprep/device_pack.npz [--dims 64] [--per-image 4]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studio.paths import data_cache_dir

FORMAT = 1
TOKENS = 16
TEXT_DIM = 384
#: encode(strings) -> (tokens float [M,16,384] zero on padding, mask bool [M,16], pooled [M,384])
Encoder = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


# -- images ------------------------------------------------------------------------------------


def encode_images(images: np.ndarray, method: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Lossless WebP bytes of each uint8 [N,H,W,3] image: ``(blob uint8, offsets int64 [N+1])``.
    ``method`` 4 is within 1% of the smallest (6) at 1/18 of its time."""
    from PIL import Image

    chunks, offsets = [], [0]
    for image in images:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "WEBP", lossless=True, quality=100, method=method)
        chunks.append(buf.getvalue())
        offsets.append(offsets[-1] + len(chunks[-1]))
    blob = np.frombuffer(b"".join(chunks), np.uint8)
    return blob, np.asarray(offsets, np.int64)


def decode_images(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The uint8 [N,H,W,3] images of :func:`encode_images`."""
    from PIL import Image

    data = blob.tobytes()
    out = [
        np.asarray(Image.open(io.BytesIO(data[a:b])).convert("RGB"))
        for a, b in itertools.pairwise(offsets)
    ]
    return np.stack(out) if out else np.zeros((0, 64, 64, 3), np.uint8)


# -- caption states ----------------------------------------------------------------------------


def fit_projection(
    tokens: torch.Tensor, mask: torch.Tensor, dims: int, sample: int = 30_000, seed: int = 0
) -> torch.Tensor:
    """Orthonormal rows ``P`` float32 [dims, 384]: the top right singular vectors of (a sample
    of) the real token states, not centred, so the projection is linear without an offset."""
    x = tokens[mask.bool()].float()
    g = torch.Generator().manual_seed(seed)
    if len(x) > sample:
        x = x[torch.randperm(len(x), generator=g)[:sample]]
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return vh[:dims].contiguous()


def quantize_rows(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 values and one fp16 scale per row (max-abs / 127)."""
    scale = (z.abs().amax(-1, keepdim=True) / 127).clamp_min(1e-8).half()
    q = torch.round(z / scale.float()).clamp(-127, 127).to(torch.int8)
    return q, scale[:, 0]


def reduce_states(
    tokens: torch.Tensor, mask: torch.Tensor, proj: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged reduced states of a bank: ``(values int8 [T,dims], scales fp16 [T], lengths
    uint8 [M])``, T the number of real tokens; rows are the tokens of caption 0, then 1, ..."""
    m = mask.bool()
    q, s = quantize_rows(tokens[m].float() @ proj.T)
    return q.numpy(), s.numpy(), m.sum(1).to(torch.uint8).numpy()


def expand_states(
    values: np.ndarray, scales: np.ndarray, lengths: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ``(tokens float32 [M,16,dims] zero on padding, mask bool [M,16])``. A mask of real
    tokens that starts at position 0 is what the MiniLM encodings have (CLS first)."""
    lengths_t = torch.from_numpy(lengths.astype(np.int64))
    mask = torch.arange(TOKENS)[None, :] < lengths_t[:, None]
    dense = torch.zeros(len(lengths), TOKENS, values.shape[1])
    z = torch.from_numpy(values).float() * torch.from_numpy(scales).float()[:, None]
    dense[mask] = z
    return dense, mask


def pooled(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unit-norm mean of the real token states [M, D]."""
    m = mask.float()[..., None]
    return torch.nn.functional.normalize((tokens * m).sum(1) / m.sum(1).clamp_min(1), dim=-1)


def caption_information(
    tokens: torch.Tensor, mask: torch.Tensor, proj: torch.Tensor, sample: int = 4000
) -> dict[str, float]:
    """How much of a bank survives the int8 projection, on a sample of captions: cosine of the
    pooled reconstruction ``P^T q(P x)`` with the pooled original (mean, min), and retrieval@1
    of each caption's reconstruction among the sample's originals (what the model can tell
    apart)."""
    g = torch.Generator().manual_seed(1)
    idx = torch.randperm(len(tokens), generator=g)[:sample]
    t, m = tokens[idx].float(), mask[idx].bool()
    v, s, n = reduce_states(t, m, proj)
    z, _ = expand_states(v, s, n)
    rec = z @ proj
    p0, p1 = pooled(t, m), pooled(rec, m)
    cos = (p0 * p1).sum(-1)
    hits = (p1 @ p0.T).argmax(1) == torch.arange(len(idx))
    return {
        "pooled_cos_mean": round(float(cos.mean()), 4),
        "pooled_cos_min": round(float(cos.min()), 4),
        "retrieval_at_1": round(float(hits.float().mean()), 4),
    }


# -- the pack ----------------------------------------------------------------------------------


def _flip_ok(caption_ids: np.ndarray, texts: list[str]) -> np.ndarray:
    from studio.training.train_text2img import _NO_FLIP

    return np.array(
        [not any(_NO_FLIP.search(texts[c]) for c in row if c > 0) for row in caption_ids], bool
    )


def build(
    src: Path,
    out: Path,
    dims: int = 64,
    per_image: int = 4,
    encoder: Encoder | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Write the device pack for the captioned pack in ``src`` to ``out``; returns a summary.
    ``encoder`` (MiniLM) encodes the eval paraphrases, which are not in the bank; without it
    the eval pairs carry captions only."""
    from safetensors.torch import load_file

    t0 = time.perf_counter()
    texts = json.loads((src / "captions.json").read_text())
    enc = load_file(str(src / "captions.safetensors"))
    splits = {s: dict(np.load(src / f"{s}.npz")) for s in ("train", "val")}
    evals = json.loads((src / "eval.json").read_text()) if (src / "eval.json").is_file() else []
    used = [0]  # the empty caption keeps index 0
    for s in splits.values():
        ids = s["caption_ids"][:, :per_image]
        used += [int(c) for c in np.unique(ids[ids >= 0]) if c != 0]
    used += [texts.index(e["caption"]) for e in evals if e["caption"] in texts]
    used = list(dict.fromkeys(used))
    remap = np.full(len(texts), -1, np.int64)
    remap[used] = np.arange(len(used))
    bank_texts = [texts[i] for i in used]
    tok = enc["tokens"][torch.tensor(used)]
    msk = enc["mask"][torch.tensor(used)].bool()
    pool = enc["pooled"][torch.tensor(used)]

    phrases = [e["paraphrase"] for e in evals if e.get("paraphrase")] if encoder else []
    if phrases:
        p_tok, p_msk, p_pool = encoder(phrases)
        tok = torch.cat([tok, p_tok[:, :TOKENS].to(tok.dtype)])
        msk = torch.cat([msk, p_msk[:, :TOKENS].bool()])
        pool = torch.cat([pool, p_pool.to(pool.dtype)])
        bank_texts += phrases
    tok = tok.float() * msk[..., None]

    proj = fit_projection(tok[1:], msk[1:], dims)
    values, scales, lengths = reduce_states(tok, msk, proj)
    info = caption_information(tok, msk, proj)
    log(f"bank {len(bank_texts)} captions, {len(values)} tokens, {dims}-d int8: {info}")

    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "projection": proj.numpy().astype(np.float32),
        "token_values": values,
        "token_scales": scales,
        "token_lengths": lengths,
        "texts": np.frombuffer(json.dumps(bank_texts, ensure_ascii=False).encode(), np.uint8),
    }
    for name, s in splits.items():
        ids = s["caption_ids"][:, :per_image].astype(np.int64)
        new = np.where(ids >= 0, remap[np.maximum(ids, 0)], -1).astype(np.int32)
        t1 = time.perf_counter()
        blob, offsets = encode_images(s["images"])
        log(
            f"{name}: {len(offsets) - 1} images, {blob.nbytes / 1e6:.1f} MB WebP "
            f"in {time.perf_counter() - t1:.0f} s"
        )
        flip = s["flip_ok"].astype(bool) if "flip_ok" in s else _flip_ok(s["caption_ids"], texts)
        arrays |= {
            f"{name}_webp": blob,
            f"{name}_offsets": offsets,
            f"{name}_caption_ids": new,
            f"{name}_flip_ok": flip,
        }
    index = {c: j for j, c in enumerate(bank_texts)}
    rows = [e for e in evals if e["caption"] in index]
    arrays["eval_index"] = np.array([e["index"] for e in rows], np.int32)
    arrays["eval_caption"] = np.array([index[e["caption"]] for e in rows], np.int32)
    arrays["eval_paraphrase"] = np.array(
        [index.get(e.get("paraphrase"), -1) for e in rows], np.int32
    )
    keep = sorted(
        {int(i) for i in arrays["eval_caption"]}
        | {int(i) for i in arrays["eval_paraphrase"] if i >= 0}
    )
    arrays["pooled_ids"] = np.array(keep, np.int32)
    arrays["pooled"] = pool[torch.tensor(keep, dtype=torch.long)].half().numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out)
    summary = {
        "file": str(out),
        "mb": round(out.stat().st_size / 1e6, 2),
        "dims": dims,
        "per_image": per_image,
        "bank": len(bank_texts),
        "tokens": len(values),
        "train": int(len(arrays["train_offsets"]) - 1),
        "val": int(len(arrays["val_offsets"]) - 1),
        "eval_pairs": len(rows),
        "caption_information": info,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    log(json.dumps(summary))
    return summary


@dataclass
class DevicePack:
    """A loaded device pack: decoded images, caption ids into the bank and the dense bank."""

    train_images: np.ndarray  # uint8 [N,64,64,3]
    train_caption_ids: np.ndarray  # int64 [N,K], -1 unused
    train_flip_ok: np.ndarray  # bool [N]
    val_images: np.ndarray
    val_caption_ids: np.ndarray
    tokens: torch.Tensor  # float32 [M,16,dims], zero on padding
    mask: torch.Tensor  # bool [M,16]
    projection: torch.Tensor  # float32 [dims,384]
    texts: list[str]
    eval_index: np.ndarray  # int [E]: val image
    eval_caption: np.ndarray  # int [E]: bank id
    eval_paraphrase: np.ndarray  # int [E]: bank id, -1 none
    pooled: dict[int, torch.Tensor]  # bank id -> MiniLM pooled [384] (eval captions only)

    @property
    def dims(self) -> int:
        return int(self.projection.shape[0])


def load(path: str | Path) -> DevicePack:
    """Read and decode a pack written by :func:`build`."""
    with np.load(path) as z:
        a = {k: z[k] for k in z.files}
    if int(a["format"]) != FORMAT:
        raise SystemExit(f"{path}: device pack format {int(a['format'])}, expected {FORMAT}")
    tokens, mask = expand_states(a["token_values"], a["token_scales"], a["token_lengths"])
    pooled_rows = torch.from_numpy(a["pooled"].astype(np.float32))
    return DevicePack(
        train_images=decode_images(a["train_webp"], a["train_offsets"]),
        train_caption_ids=a["train_caption_ids"].astype(np.int64),
        train_flip_ok=a["train_flip_ok"].astype(bool),
        val_images=decode_images(a["val_webp"], a["val_offsets"]),
        val_caption_ids=a["val_caption_ids"].astype(np.int64),
        tokens=tokens,
        mask=mask,
        projection=torch.from_numpy(a["projection"]),
        texts=json.loads(a["texts"].tobytes().decode()),
        eval_index=a["eval_index"].astype(np.int64),
        eval_caption=a["eval_caption"].astype(np.int64),
        eval_paraphrase=a["eval_paraphrase"].astype(np.int64),
        pooled={int(i): pooled_rows[j] for j, i in enumerate(a["pooled_ids"])},
    )


def write_clip(src: Path, dst: Path) -> int:
    """The mini-CLIP's weights (for R-precision on the device) without its caption bank, in
    fp16: about a third of the file. Returns the bytes written."""
    from safetensors.torch import load_file, save_file

    sd = load_file(str(src))
    keep = {
        k: (v.half() if v.is_floating_point() else v).contiguous()
        for k, v in sd.items()
        if not k.startswith("bank.")
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(keep, str(dst))
    return dst.stat().st_size


def minilm_encoder() -> Encoder:
    """MiniLM at 16 tokens, on one thread (the paraphrases only: a few hundred strings)."""
    from studio.models.text_encoder import TextEncoder

    encoder = TextEncoder(max_tokens=TOKENS, batch_size=128)

    def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = encoder.encode(texts)
        return r.tokens.float(), r.mask.bool(), r.pooled.float()

    return encode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--src", type=Path, default=data_cache_dir() / "captioned")
    ap.add_argument("--out", type=Path, default=data_cache_dir() / "gpuprep" / "device_pack.npz")
    ap.add_argument("--dims", type=int, default=64, help="reduced token width")
    ap.add_argument("--per-image", type=int, default=4, help="caption variants kept per image")
    ap.add_argument("--no-paraphrases", action="store_true", help="skip the MiniLM encoder")
    ap.add_argument("--clip", type=Path, default=None, help="also write this mini-CLIP, lean")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.clip is not None:
        dst = args.out.with_name("mini-clip.safetensors")
        print(f"{dst}: {write_clip(args.clip, dst) / 1e6:.1f} MB")
    encoder = None if args.no_paraphrases else minilm_encoder()
    build(args.src, args.out, args.dims, args.per_image, encoder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
