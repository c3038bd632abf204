"""LoRA files on a loaded Stable Diffusion model, from local files only.

diffusers reads both the diffusers/peft layout (``unet.….lora_A.weight``) and the kohya/A1111
layout (``lora_unet_…​.lora_down.weight`` with ``.alpha``). Each file becomes a peft adapter,
``set_adapters`` gives each its weight, and the set is then fused into the weights and the
adapters dropped: every denoising step then costs what it costs without LoRA, and the UNet stays
a plain module for ``torch.compile``. The engine caches a model per LoRA set, so a different set
means a fresh load, never an unfuse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from studio.errors import BadInputError, MissingModelError, StudioError
from studio.models.loading import read_state_dict
from studio.models.sd.family import describe_weights, few_step_of, is_lora
from studio.models.sd.header import read_safetensors_header
from studio.models.sd.model import FewStep, SDFamily, SDModel

#: the text width a LoRA's cross-attention key projection takes, per family
_CONTEXT = {768: SDFamily.SD1, 1024: SDFamily.SD2, 2048: SDFamily.SDXL, 1280: SDFamily.SDXL_REFINER}
_TO_K = re.compile(r"attn2[._]to_k.*(lora_down|lora_A|lora\.down)[._]weight$")
_SECOND_ENCODER = re.compile(r"^(lora_te2_|text_encoder_2\.)")


def lora_family(shapes: Mapping[str, Sequence[int]]) -> SDFamily | None:
    """The family a LoRA was trained for, from its cross-attention shapes (None when it adapts
    no cross-attention, e.g. a text-encoder-only LoRA)."""
    widths = {int(s[1]) for k, s in shapes.items() if _TO_K.search(k) and len(s) >= 2}
    family = _CONTEXT.get(widths.pop()) if len(widths) == 1 else None
    if family is SDFamily.SD1 and any(_SECOND_ENCODER.search(k) for k in shapes):
        return SDFamily.SDXL  # SDXL's first encoder is SD1's; only XL LoRAs touch a second
    return family


def apply_loras(model: SDModel, loras: Sequence[tuple[Path, float]]) -> None:
    """Fuse ``loras`` ((file, weight) pairs) into ``model``'s UNet and text encoders. A LoRA
    named or labelled LCM, Turbo or Lightning (``lcm-lora-sdv1-5``) sets ``model.few_step``.

    Raises :class:`MissingModelError` for a missing file and :class:`BadInputError` for a
    file that is not a LoRA, or not one for this model's family."""
    if not loras:
        return
    pipe = model.pipe
    names, weights = [], []
    for index, (path, weight) in enumerate(loras):
        path = Path(path)
        if not path.is_file():
            raise MissingModelError(f"{path}: LoRA file not found")
        state = read_state_dict(path)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        if not is_lora(shapes):
            raise BadInputError(
                f"{path.name}: not a LoRA: it looks like {describe_weights(shapes)}"
            )
        trained_for = lora_family(shapes)
        if trained_for is not None and trained_for is not model.family:
            raise BadInputError(
                f"{path.name}: a LoRA for {_FAMILY_NAMES[trained_for]}, but the model is "
                f"{_FAMILY_NAMES[model.family]}"
            )
        name = f"lora{index}"
        try:
            pipe.load_lora_weights(state, adapter_name=name)
        except StudioError:
            raise
        except Exception as exc:  # diffusers and peft report a mismatch in many ways
            pipe.unload_lora_weights()
            raise BadInputError(f"{path.name}: does not fit this model ({_short(exc)})") from None
        names.append(name)
        weights.append(float(weight))
        distilled = few_step_of(path.stem, _metadata(path))
        if distilled is not FewStep.NONE and weight > 0:
            model.few_step = distilled  # an LCM, Turbo or Lightning LoRA makes the model one
    pipe.set_adapters(names, adapter_weights=weights)
    pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
    pipe.unload_lora_weights()


_FAMILY_NAMES = {
    SDFamily.SD1: "SD 1.x",
    SDFamily.SD2: "SD 2.x",
    SDFamily.SDXL: "SDXL",
    SDFamily.SDXL_REFINER: "the SDXL refiner",
}


def _metadata(path: Path) -> dict[str, str]:
    if path.suffix.lower() != ".safetensors":
        return {}
    return read_safetensors_header(path).metadata


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
