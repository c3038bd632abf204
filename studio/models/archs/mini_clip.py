"""A CLIP in miniature: a small convolutional image encoder trained contrastively against the
pooled all-MiniLM-L6-v2 sentence vectors, plus the caption bank Describe ranks.

Image side: four stages, each a stride-2 3x3 convolution then a stride-1 3x3 convolution (group
norm, SiLU), 64x64 -> 4x4, flattened, one linear layer to the 384-d text space, L2-normalised.
Group norm (not batch norm) so an image's vector never depends on its batch. Text side: the
MiniLM pooled vector through a learned 384x384 linear map (initialised to the identity),
L2-normalised. A learned temperature ``logit_scale`` (CLIP's, capped at 100).

The caption bank (optional in a state dict; what Describe ranks) lives in the same file so
Describe needs no text encoder at run time: ``bank.embeddings`` fp16 [B, 384] (already through
``text_proj`` and unit norm), ``bank.text`` uint8 (the captions' UTF-8 joined) and
``bank.offsets`` int64 [B + 1] (caption ``i`` is ``text[offsets[i]:offsets[i+1]]``).

Tensor contract: :meth:`MiniClip.encode_image` takes float32 RGB NCHW in [0, 1], 64x64, and
returns (N, 384) unit vectors; :meth:`MiniClip.encode_text` takes MiniLM pooled vectors (N, 384)
and returns (N, 384) unit vectors. State-dict keys: ``image.convs.{i}.weight``/``.bias``,
``image.norms.{i}.weight``/``.bias``, ``image.proj.weight``/``.bias``, ``text_proj.weight``/
``.bias``, ``logit_scale``, optionally ``bank.*``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.models.arch import LoadedModel, StateDict, count_prefixed, has_keys

IMAGE_SIZE = 64
EMBED_DIM = 384
DEFAULT_WIDTHS = (24, 48, 96, 192)
MAX_LOGIT_SCALE = math.log(100.0)
BANK_KEYS = ("bank.embeddings", "bank.text", "bank.offsets")
GROUPS = 8


class ImageEncoder(nn.Module):
    """(N, 3, 64, 64) in [0, 1] -> (N, dim) unit vectors. Conv ``2k`` has stride 2, ``2k+1``
    stride 1; ``widths`` gives each stage's channels."""

    def __init__(self, widths: tuple[int, ...] = DEFAULT_WIDTHS, dim: int = EMBED_DIM) -> None:
        super().__init__()
        chans = [3]
        for w in widths:
            chans += [w, w]
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, 3, 2 if i % 2 == 0 else 1, 1)
            for i, (cin, cout) in enumerate(itertools.pairwise(chans))
        )
        self.norms = nn.ModuleList(nn.GroupNorm(min(GROUPS, c), c) for c in chans[1:])
        side = IMAGE_SIZE // 2 ** len(widths)
        self.proj = nn.Linear(widths[-1] * side * side, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 2.0 - 1.0
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.silu(norm(conv(x)))
        return F.normalize(self.proj(x.flatten(1)).float(), dim=1)


class MiniClip(nn.Module):
    """Image encoder, text map and temperature; ``bank_*`` when a caption bank is attached."""

    def __init__(self, widths: tuple[int, ...] = DEFAULT_WIDTHS, dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.image = ImageEncoder(widths, dim)
        self.text_proj = nn.Linear(dim, dim)
        with torch.no_grad():
            self.text_proj.weight.copy_(torch.eye(dim))
            self.text_proj.bias.zero_()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.bank_embeddings: torch.Tensor | None = None
        self.bank_captions: list[str] = []

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.image(x)

    def encode_text(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(pooled.to(self.text_proj.weight.dtype)).float(), dim=1)

    def scale(self) -> torch.Tensor:
        """The temperature as a multiplier of cosine similarities (at most 100)."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def attach_bank(self, captions: list[str], embeddings: torch.Tensor) -> None:
        """Set the caption bank: ``embeddings`` (B, dim) in the joint space, unit norm."""
        if len(captions) != len(embeddings):
            raise ValueError("one embedding per caption")
        self.bank_captions = list(captions)
        self.bank_embeddings = embeddings.detach().float()

    def bank_state(self) -> dict[str, torch.Tensor]:
        """The bank as state-dict entries (empty when none is attached)."""
        if self.bank_embeddings is None:
            return {}
        return {
            "bank.embeddings": self.bank_embeddings.half().contiguous(),
            **pack_texts(self.bank_captions),
        }


def pack_texts(texts: list[str]) -> dict[str, torch.Tensor]:
    """Strings as ``bank.text`` (uint8 UTF-8, joined) and ``bank.offsets`` (int64, B + 1)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    data = np.frombuffer(b"".join(encoded), np.uint8).copy()
    return {"bank.text": torch.from_numpy(data), "bank.offsets": torch.from_numpy(offsets)}


def unpack_texts(text: torch.Tensor, offsets: torch.Tensor) -> list[str]:
    """The inverse of :func:`pack_texts`."""
    raw = text.numpy().tobytes()
    ends = offsets.tolist()
    if ends[0] != 0 or ends[-1] != len(raw) or any(b < a for a, b in itertools.pairwise(ends)):
        raise ValueError("caption bank offsets do not fit its text")
    return [raw[a:b].decode("utf-8") for a, b in itertools.pairwise(ends)]


def widths_of(state_dict: StateDict) -> tuple[int, ...]:
    """Each stage's channels, read from the conv weight shapes."""
    n = count_prefixed(state_dict, "image.convs.", ".weight")
    if n == 0 or n % 2:
        raise ValueError(f"expected an even number of image convolutions, found {n}")
    return tuple(int(state_dict[f"image.convs.{i}.weight"].shape[0]) for i in range(0, n, 2))


class MiniClipArch:
    """Registry entry for :class:`MiniClip`."""

    id = "mini-clip"
    name = "Miniature CLIP (64x64 image encoder, MiniLM text space)"
    license = "MIT"

    def detect(self, state_dict: StateDict) -> bool:
        return has_keys(state_dict, "image.convs.0.weight", "image.proj.weight", "logit_scale")

    def load(self, state_dict: StateDict) -> LoadedModel:
        widths = widths_of(state_dict)
        dim = int(state_dict["image.proj.weight"].shape[0])
        model = MiniClip(widths, dim)
        weights = {k: v for k, v in state_dict.items() if not k.startswith("bank.")}
        model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
        if has_keys(state_dict, *BANK_KEYS):
            captions = unpack_texts(state_dict["bank.text"], state_dict["bank.offsets"])
            model.attach_bank(captions, state_dict["bank.embeddings"])
        model.eval()
        return LoadedModel(
            model,
            self.id,
            supports_half=True,
            receptive_field=IMAGE_SIZE,
            extra={"widths": widths, "bank_size": len(model.bank_captions)},
        )
