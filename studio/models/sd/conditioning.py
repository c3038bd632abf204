"""What the UNet is conditioned on besides the latents: prompt embeddings (through the
pipeline's own ``encode_prompt``, so LoRA scales and clip skip behave as in diffusers), SDXL's
pooled embedding and size/crop ids, and the guidance embedding of LCM-distilled UNets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from studio.errors import BadWeightsError
from studio.models.sd.model import SDFamily, SDModel

#: the refiner's aesthetic-score conditioning (diffusers' defaults)
AESTHETIC_SCORE = 6.0
NEGATIVE_AESTHETIC_SCORE = 2.5


@dataclass(frozen=True)
class Conditioning:
    """Keyword arguments of every UNet call of a run, already batched: ``count`` rows, or
    ``2 * count`` (unconditional rows first) when classifier-free guidance is on."""

    encoder_hidden_states: torch.Tensor
    added_cond_kwargs: dict[str, torch.Tensor] | None
    timestep_cond: torch.Tensor | None

    def unet_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"encoder_hidden_states": self.encoder_hidden_states}
        if self.added_cond_kwargs is not None:
            kwargs["added_cond_kwargs"] = self.added_cond_kwargs
        if self.timestep_cond is not None:
            kwargs["timestep_cond"] = self.timestep_cond
        return kwargs


def guidance_is_embedded(unet: Any) -> bool:
    """True for an LCM-distilled UNet that takes the guidance scale as an input."""
    return getattr(unet.config, "time_cond_proj_dim", None) is not None


def encode(
    model: SDModel,
    prompt: str,
    negative: str,
    *,
    count: int,
    cfg: bool,
    guidance: float,
    size: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
) -> Conditioning:
    """Embeddings for ``count`` images of ``size`` (width, height); call under inference mode."""
    pipe, negative_or_none = model.pipe, (negative or None)
    xl = model.family in (SDFamily.SDXL, SDFamily.SDXL_REFINER)
    if xl:
        pos, neg, pooled, neg_pooled = pipe.encode_prompt(
            prompt=prompt,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=cfg,
            negative_prompt=negative_or_none,
        )
    else:
        pos, neg = pipe.encode_prompt(prompt, device, 1, cfg, negative_prompt=negative_or_none)
    states = _batch(pos, neg if cfg else None, count).to(dtype)
    added = None
    if xl:
        ids, neg_ids = _time_ids(pipe.unet, size, int(pooled.shape[-1]))
        added = {
            "text_embeds": _batch(pooled, neg_pooled if cfg else None, count).to(device, dtype),
            "time_ids": _batch(ids, neg_ids if cfg else None, count).to(device, dtype),
        }
    timestep_cond = None
    if guidance_is_embedded(pipe.unet):
        dim = int(pipe.unet.config.time_cond_proj_dim)
        w = torch.full((count,), guidance - 1.0)
        timestep_cond = guidance_embedding(w, dim).to(device, dtype)
    return Conditioning(states, added, timestep_cond)


def _batch(pos: torch.Tensor, neg: torch.Tensor | None, count: int) -> torch.Tensor:
    rows = [pos.expand(count, *pos.shape[1:])]
    if neg is not None:
        rows.insert(0, neg.expand(count, *neg.shape[1:]))
    return torch.cat(rows)


def _time_ids(
    unet: Any, size: tuple[int, int], projection_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """SDXL's micro-conditioning: original size, crop corner and target size (base model), or
    original size, crop corner and aesthetic score (refiner); which one is read off the UNet's
    added-embedding width, as diffusers' pipelines check it."""
    width, height = size
    per_id = int(unet.config.addition_time_embed_dim)
    n_ids = (unet.add_embedding.linear_1.in_features - projection_dim) // per_id
    if n_ids == 6:
        ids = neg = [height, width, 0, 0, height, width]
    elif n_ids == 5:
        ids = [height, width, 0, 0, AESTHETIC_SCORE]
        neg = [height, width, 0, 0, NEGATIVE_AESTHETIC_SCORE]
    else:
        raise BadWeightsError(f"this SDXL UNet expects {n_ids} size ids; Studio knows 5 or 6")
    return torch.tensor([ids], dtype=torch.float32), torch.tensor([neg], dtype=torch.float32)


def guidance_embedding(w: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of guidance scales ``w`` [n] -> [n, dim] (as LCM was distilled)."""
    w = w.float() * 1000.0
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
    emb = w[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)
    return torch.nn.functional.pad(emb, (0, 1)) if dim % 2 else emb
