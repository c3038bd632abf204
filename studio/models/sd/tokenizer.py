"""The CLIP tokenizer every Stable Diffusion family uses, built from the vocabulary Studio ships.

The files in ``configs/clip-tokenizer/`` are a deterministic conversion of open_clip's
``bpe_simple_vocab_16e6.txt.gz`` (MIT, licence beside them): the byte-to-unicode table, its
``</w>`` twins, the 48,894 merges of lines 1..48894, then ``<|startoftext|>`` (49406) and
``<|endoftext|>`` (49407). CLIP ViT-L (SD1, SDXL's first encoder) pads with ``<|endoftext|>``;
OpenCLIP ViT-H and ViT-bigG (SD2, SDXL's second encoder, the refiner) pad with ``!`` (id 0).
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources
from typing import Any, Literal

MAX_TOKENS = 77
#: the pad token per text encoder: "eos" for CLIP ViT-L, "!" for OpenCLIP ViT-H and bigG
Pad = Literal["eos", "!"]


@functools.cache
def _vocabulary() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    folder = resources.files("studio.models.sd") / "configs" / "clip-tokenizer"
    vocab = json.loads(gzip.decompress((folder / "vocab.json.gz").read_bytes()))
    lines = gzip.decompress((folder / "merges.txt.gz").read_bytes()).decode("utf-8")
    merges = tuple(tuple(ln.split(" ")) for ln in lines.splitlines()[1:] if ln)
    return vocab, merges


def clip_tokenizer(pad: Pad = "eos") -> Any:
    """A fresh ``transformers.CLIPTokenizer`` (77 tokens) built in memory, no file or hub read."""
    from transformers import CLIPTokenizer

    vocab, merges = _vocabulary()
    tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=MAX_TOKENS)
    if pad == "!":
        # Passing pad_token="!" would register "!" as a special token, and then "cat!!" would
        # split into "!" "!" (ids 0 0) instead of open_clip's "!!</w>" (748). Naming the pad
        # token without registering it keeps the prompt's ids those SD2 and SDXL were trained on.
        tokenizer._special_tokens_map["pad_token"] = "!"
    return tokenizer
