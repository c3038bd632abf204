"""Describe a picture: the captions of the miniature CLIP's bank that fit it best.

The caption bank and its text vectors live in the model file (see
:mod:`studio.models.archs.mini_clip`), so describing needs no text encoder: one forward pass of
the small image encoder and one matrix product. Any picture is first made to look like the
training data: composited on white (transparent pixels are white there), padded to a square
with white and resized to 64x64.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from studio.errors import BadInputError
from studio.models.archs.mini_clip import IMAGE_SIZE, MiniClip

MAX_TOP_K = 50


def prepare(image: np.ndarray, size: int = IMAGE_SIZE) -> torch.Tensor:
    """RGB(A) uint8 HxWxC -> float32 [1, 3, size, size] in [0, 1]: on white, padded square."""
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise BadInputError("describe needs an RGB or RGBA 8-bit picture")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise BadInputError("describe needs a picture (the selection is empty)")
    rgb = image[:, :, :3].astype(np.float32)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        rgb = rgb * alpha + 255.0 * (1.0 - alpha)
    side = max(h, w)
    square = np.full((side, side, 3), 255.0, np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = rgb
    pil = Image.fromarray(np.clip(square + 0.5, 0, 255).astype(np.uint8))
    small = np.asarray(pil.resize((size, size), Image.LANCZOS), np.float32) / 255.0
    return torch.from_numpy(small).permute(2, 0, 1).unsqueeze(0).contiguous()


@torch.inference_mode()
def describe(model: MiniClip, image: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
    """The ``top_k`` captions of ``model``'s bank closest to ``image`` (uint8 HxWx3 or 4), best
    first, each with its cosine similarity in [-1, 1]."""
    if model.bank_embeddings is None or not model.bank_captions:
        raise BadInputError("this model has no caption bank to describe with")
    if not 1 <= top_k <= MAX_TOP_K:
        raise BadInputError(f"top must be between 1 and {MAX_TOP_K}, got {top_k}")
    param = next(model.parameters())
    x = prepare(image).to(param.device, param.dtype)
    vector = model.encode_image(x)[0].float()
    bank = model.bank_embeddings.to(vector.device, torch.float32)
    scores = bank @ vector
    k = min(top_k, len(scores))
    best = torch.topk(scores, k)
    return [
        (model.bank_captions[i], float(s))
        for s, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)
    ]
