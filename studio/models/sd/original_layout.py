"""A diffusers SD pipeline's weights in the original single-file key layout (the layout of
the checkpoints artists download): the inverse of diffusers' single-file conversion.

Used to write checkpoints for tests (tiny random pipelines) and for benchmarks (a true-size
random SD 1.5 file). The maps are derived from each model's config, so any depth of UNet or
VAE with SD1's block pattern converts, not only the 4-level release. The UNet map also covers
SDXL's UNet (``label_emb``), and the OpenCLIP text encoders of SD2 and SDXL are written in
OpenCLIP's names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_L_PREFIX = "cond_stage_model.transformer."

_RESNET = (
    ("in_layers.0.", "norm1."),
    ("in_layers.2.", "conv1."),
    ("out_layers.0.", "norm2."),
    ("out_layers.3.", "conv2."),
    ("emb_layers.1.", "time_emb_proj."),
    ("skip_connection.", "conv_shortcut."),
)
_UNET_FIXED = (
    ("time_embed.0.", "time_embedding.linear_1."),
    ("time_embed.2.", "time_embedding.linear_2."),
    ("label_emb.0.0.", "add_embedding.linear_1."),
    ("label_emb.0.2.", "add_embedding.linear_2."),
    ("input_blocks.0.0.", "conv_in."),
    ("out.0.", "conv_norm_out."),
    ("out.2.", "conv_out."),
)


def unet_prefix_map(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(original prefix, diffusers prefix) pairs of a ``UNet2DConditionModel`` config."""
    per_level = int(config["layers_per_block"])
    down, up = list(config["down_block_types"]), list(config["up_block_types"])
    levels = len(down)
    pairs = list(_UNET_FIXED)
    for i in range(levels):
        for j in range(per_level):
            block = 1 + i * (per_level + 1) + j
            pairs.append((f"input_blocks.{block}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down[i].startswith("CrossAttn"):
                pairs.append((f"input_blocks.{block}.1.", f"down_blocks.{i}.attentions.{j}."))
        if i < levels - 1:
            block = (i + 1) * (per_level + 1)
            pairs.append((f"input_blocks.{block}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
        for j in range(per_level + 1):
            block = i * (per_level + 1) + j
            pairs.append((f"output_blocks.{block}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up[i].startswith("CrossAttn"):
                pairs.append((f"output_blocks.{block}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < levels - 1:
            block = i * (per_level + 1) + per_level
            slot = 2 if up[i].startswith("CrossAttn") else 1
            pairs.append((f"output_blocks.{block}.{slot}.", f"up_blocks.{i}.upsamplers.0."))
    pairs += [
        ("middle_block.0.", "mid_block.resnets.0."),
        ("middle_block.1.", "mid_block.attentions.0."),
        ("middle_block.2.", "mid_block.resnets.1."),
    ]
    return pairs


def unet_to_original(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict:
    """A diffusers UNet state dict under ``model.diffusion_model.`` in the original names."""
    pairs = sorted(unet_prefix_map(config), key=lambda p: -len(p[1]))
    out = {}
    for key, value in state.items():
        original, rest = _rename_prefix(key, pairs)
        if original.startswith(("input_blocks.", "output_blocks.", "middle_block.")) and (
            ".attentions." not in key
        ):
            for old, new in _RESNET:
                rest = _swap_start(rest, new, old)
        out[UNET_PREFIX + original + rest] = value
    return out


def vae_prefix_map(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(original prefix, diffusers prefix) pairs of an ``AutoencoderKL`` config."""
    per_level = int(config["layers_per_block"])
    levels = len(config["block_out_channels"])
    pairs = [
        ("encoder.norm_out.", "encoder.conv_norm_out."),
        ("decoder.norm_out.", "decoder.conv_norm_out."),
    ]
    for part in ("encoder", "decoder"):
        pairs.append((f"{part}.mid.attn_1.", f"{part}.mid_block.attentions.0."))
        for j in range(2):
            pairs.append((f"{part}.mid.block_{j + 1}.", f"{part}.mid_block.resnets.{j}."))
    for i in range(levels):
        for j in range(per_level):
            pairs.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        for j in range(per_level + 1):
            pairs.append(
                (f"decoder.up.{levels - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}.")
            )
        if i < levels - 1:
            pairs.append(
                (f"encoder.down.{i}.downsample.", f"encoder.down_blocks.{i}.downsamplers.0.")
            )
            pairs.append(
                (f"decoder.up.{levels - 1 - i}.upsample.", f"decoder.up_blocks.{i}.upsamplers.0.")
            )
    return pairs


_VAE_ATTENTION = (
    ("norm.", "group_norm."),
    ("q.", "to_q."),
    ("k.", "to_k."),
    ("v.", "to_v."),
    ("proj_out.", "to_out.0."),
)


def vae_to_original(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict:
    """A diffusers VAE state dict under ``first_stage_model.`` in the original names; the
    attention's linear layers become the 1x1 convolutions of the original."""
    pairs = sorted(vae_prefix_map(config), key=lambda p: -len(p[1]))
    out = {}
    for key, value in state.items():
        original, rest = _rename_prefix(key, pairs)
        if original.endswith("attn_1."):
            for old, new in _VAE_ATTENTION:
                if rest.startswith(new):
                    rest = old + rest[len(new) :]
                    if value.ndim == 2:
                        value = value[:, :, None, None]
                    break
        elif original:
            rest = rest.replace("conv_shortcut.", "nin_shortcut.")
        out[VAE_PREFIX + original + rest] = value
    return out


def clip_l_to_original(state: Mapping[str, torch.Tensor], prefix: str = CLIP_L_PREFIX) -> dict:
    """A transformers ``CLIPTextModel`` state dict under ``prefix`` (SD1's
    ``cond_stage_model.transformer.``; SDXL's ``conditioner.embedders.0.transformer.``)."""
    out = {}
    for key, value in state.items():
        inner = key if key.startswith("text_model.") else "text_model." + key
        out[prefix + inner] = value
    return out


_OPEN_CLIP_NAMES = (
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
    ("self_attn.out_proj.", "attn.out_proj."),
)
_LAYER = re.compile(r"^text_model\.encoder\.layers\.(\d+)\.(.*)$")


def open_clip_to_original(state: Mapping[str, torch.Tensor], prefix: str) -> dict:
    """A transformers CLIP text model (OpenCLIP ViT-H or bigG converted) back in OpenCLIP's
    names under ``prefix`` (``cond_stage_model.model.`` for SD2, ``conditioner.embedders.1.model.``
    for SDXL): q, k and v joined into ``in_proj``, the projection transposed."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    fixed = {
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    for key, value in state.items():
        if not key.startswith(("text_model.", "text_projection")):
            key = "text_model." + key
        if key in fixed:
            out[prefix + fixed[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif match := _LAYER.match(key):
            layer, rest = match.groups()
            block = f"{prefix}transformer.resblocks.{layer}."
            part = re.match(r"self_attn\.([qkv])_proj\.(weight|bias)$", rest)
            if part:
                qkv.setdefault((block, part.group(2)), {})[part.group(1)] = value
                continue
            for new, old in _OPEN_CLIP_NAMES:
                rest = old + rest[len(new) :] if rest.startswith(new) else rest
            out[block + rest] = value
    for (block, kind), parts in qkv.items():
        out[f"{block}attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def pipeline_to_original(pipe: Any) -> dict[str, torch.Tensor]:
    """Every weight of a diffusers SD1, SD2 or SDXL pipeline (UNet, VAE, text encoders) in the
    original single-file layout, ready for ``safetensors.torch.save_file``."""
    state: dict[str, torch.Tensor] = {}
    state.update(unet_to_original(pipe.unet.state_dict(), pipe.unet.config))
    state.update(vae_to_original(pipe.vae.state_dict(), pipe.vae.config))
    first, second = pipe.text_encoder, getattr(pipe, "text_encoder_2", None)
    if second is None and pipe.unet.config.cross_attention_dim == 1024:  # SD2: OpenCLIP ViT-H
        state.update(open_clip_to_original(first.state_dict(), "cond_stage_model.model."))
    elif second is None:
        state.update(clip_l_to_original(first.state_dict()))
    elif first is None:  # the SDXL refiner: bigG alone
        state.update(open_clip_to_original(second.state_dict(), "conditioner.embedders.0.model."))
    else:
        state.update(clip_l_to_original(first.state_dict(), "conditioner.embedders.0.transformer."))
        state.update(open_clip_to_original(second.state_dict(), "conditioner.embedders.1.model."))
    return {k: v.detach().contiguous() for k, v in state.items()}


#: the SD1 name callers used first
sd1_pipeline_to_original = pipeline_to_original


def _rename_prefix(key: str, pairs: list[tuple[str, str]]) -> tuple[str, str]:
    """(original prefix, rest of the key); ('', key) when no diffusers prefix matches."""
    for original, diffusers_prefix in pairs:
        if key.startswith(diffusers_prefix):
            return original, key[len(diffusers_prefix) :]
    return "", key


def _swap_start(rest: str, diffusers_name: str, original_name: str) -> str:
    return original_name + rest[len(diffusers_name) :] if rest.startswith(diffusers_name) else rest


def random_sd1_checkpoint(
    config_dir: Any, *, dtype: torch.dtype = torch.float16, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A random-initialised SD1 checkpoint in the original layout at the true size of the
    configs in ``config_dir`` (Studio's bundled ``configs/sd15``: 1.07 billion values), for
    benchmarks: speed and loading do not depend on the weights' values. Biases are zero, norm
    scales one, other weights normal with std 1/sqrt(fan-in) (drawn from one shared random
    pool), so activations stay finite."""
    from pathlib import Path

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(config_dir)
    with torch.device("meta"):  # names and shapes only
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    # Drawing a billion normal values takes minutes on a small CPU; slices of one pool of
    # 2^24, each at its own offset, take seconds and are as random as a benchmark needs.
    pool = torch.randn(1 << 24, generator=torch.Generator().manual_seed(seed))
    offset = 0

    def fill(meta: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        nonlocal offset
        out = {}
        for key, t in meta.items():
            if key.endswith("bias"):
                out[key] = torch.zeros(t.shape, dtype=dtype)
            elif t.ndim == 1:
                out[key] = torch.ones(t.shape, dtype=dtype)
            else:
                n, fan_in = t.numel(), max(1, t[0].numel())
                values = _cycle(pool, offset, n)
                out[key] = (values.view(t.shape) / fan_in**0.5).to(dtype)
                offset += 7919 * (1 + n % 104729)  # a different start for every tensor
        return out

    state: dict[str, torch.Tensor] = {}
    state.update(unet_to_original(fill(unet.state_dict()), unet.config))
    state.update(vae_to_original(fill(vae.state_dict()), vae.config))
    state.update(clip_l_to_original(fill(text.state_dict())))
    return state


def _cycle(pool: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """``n`` values of ``pool`` from ``start`` on, wrapping around."""
    size = pool.numel()
    start %= size
    if start + n <= size:
        return pool[start : start + n]
    head = pool[start:]
    rest = n - head.numel()
    return torch.cat([head, pool.repeat(rest // size + 1)[:rest]])
