"""Studio's own text-to-image network: a small pixel-space ``diffusers.UNet2DConditionModel``.

Tensor contract: ``sample`` float [B, 3, 64, 64] (noisy RGB scaled to [-1, 1] plus noise),
``timestep`` int [B], ``encoder_hidden_states`` float [B, 16, 384] (all-MiniLM-L6-v2 per-token
states, zero on padding), ``encoder_attention_mask`` bool [B, 16] (True on real tokens); output
the model's prediction (see ``schedule["prediction_type"]``), same shape as ``sample``.

Why this size: training compute is what limits quality on a CPU (a few image-epochs per hour on
2 shared cores), so the network is as cheap per image as a text-conditioned UNet gets: 2x2
pixels folded into channels (the UNet runs at 32, 16 and 8 px), cross-attention at 16 and 8 px
and in the middle block, 32/64/128 channels: 1.0 GFLOP per image per call, 4.6 M parameters,
9 MB in fp16. The 64-px, four-level alternative (32/64/128/192) costs 4.2 GFLOP.

A file is safetensors with the UNet's config and the training noise schedule as JSON in its
metadata (``text_unet_config``, ``schedule``), so loading never guesses hyperparameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from studio.errors import BadInputError

ARCH_ID = "text-unet"
TOKENS = 16
TEXT_DIM = 384
NATIVE = 64

#: the shipped network's configuration: ``patch`` (pixels per side folded into channels before
#: the UNet) and the keys of ``UNet2DConditionModel``
DEFAULT_CONFIG: dict[str, Any] = {
    "patch": 2,
    "unet": {
        "sample_size": NATIVE // 2,
        "in_channels": 12,
        "out_channels": 12,
        "block_out_channels": [32, 64, 128],
        "layers_per_block": 1,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "cross_attention_dim": TEXT_DIM,
        # diffusers' historic name: this is the number of heads
        "attention_head_dim": 4,
        "norm_num_groups": 32,
    },
}

#: the training noise schedule (keys of a diffusers scheduler config)
DEFAULT_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "timestep_spacing": "trailing",
    "rescale_betas_zero_snr": True,
}

CONFIG_KEY = "text_unet_config"
SCHEDULE_KEY = "schedule"


class TextUNet(torch.nn.Module):
    """Pixel unshuffle by ``patch``, a ``UNet2DConditionModel``, pixel shuffle back.

    Folding 2x2 pixels into channels runs the UNet at 32x32 for a 64x64 image: a quarter of the
    convolution cost at full resolution, where a pixel-space UNet spends most of its time.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        from diffusers import UNet2DConditionModel

        super().__init__()
        self.patch = int(config["patch"])
        self.unet_kwargs = dict(config["unet"])
        self.unet = UNet2DConditionModel(**self.unet_kwargs)

    @property
    def config(self) -> dict[str, Any]:
        return {"patch": self.patch, "unet": dict(self.unet_kwargs)}

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = F.pixel_unshuffle(sample, self.patch) if self.patch > 1 else sample
        out = self.unet(
            x, timestep, encoder_hidden_states, encoder_attention_mask=encoder_attention_mask
        ).sample
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out


def build_text_unet(config: Mapping[str, Any] | None = None) -> TextUNet:
    """A freshly initialised network from ``config`` (default: the shipped one)."""
    return TextUNet(config or DEFAULT_CONFIG)


def tiny_config() -> dict[str, Any]:
    """A very small configuration with the same layout, for tests."""
    unet = dict(DEFAULT_CONFIG["unet"])
    unet.update(block_out_channels=[8, 16, 16], norm_num_groups=8, attention_head_dim=2)
    return {"patch": 2, "unet": unet}


def save_text_unet(
    model: TextUNet,
    path: str | Path,
    schedule: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float16,
) -> None:
    """Write ``model``'s weights in ``dtype`` with its config, ``schedule`` and ``meta``
    (values stored as ``str``) in the safetensors metadata, atomically."""
    from safetensors.torch import save

    from studio.atomic_write import write_bytes_atomic

    sd = {k: v.detach().to(dtype).contiguous().clone() for k, v in model.state_dict().items()}
    header = {k: str(v) for k, v in (meta or {}).items()}
    header[CONFIG_KEY] = json.dumps(model.config)
    header[SCHEDULE_KEY] = json.dumps(dict(schedule))
    header["arch"] = ARCH_ID
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, save(sd, metadata=header))


def read_text_unet(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict (as stored) and metadata of a text-UNet file; :class:`BadInputError` when
    the file lacks the config this architecture needs."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if CONFIG_KEY not in meta or SCHEDULE_KEY not in meta:
        raise BadInputError(f"{path.name}: not a Studio text-to-image file (no UNet config)")
    return load_file(str(path)), meta


def load_text_unet(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[TextUNet, dict[str, Any], dict[str, str]]:
    """``(model, schedule, metadata)``: the network in eval mode on ``device`` in ``dtype``."""
    sd, meta = read_text_unet(path)
    model = build_text_unet(json.loads(meta[CONFIG_KEY]))
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    model = model.to(device=device, dtype=dtype).eval()
    return model, json.loads(meta[SCHEDULE_KEY]), meta
