"""Which Stable Diffusion a file holds, from its tensors' names and shapes only.

Two layouts: the original single file (``model.diffusion_model.*`` for the UNet,
``first_stage_model.*`` for the VAE, ``cond_stage_model.*`` or ``conditioner.embedders.*`` for
the text encoders) and diffusers' UNet layout (``conv_in``, ``down_blocks``, optionally under
``unet.``; a diffusers folder's ``unet/config.json`` says the same in words).

The UNet's cross-attention width names the family: 768 SD1 (CLIP ViT-L), 1024 SD2 (OpenCLIP
ViT-H), 2048 SDXL base (ViT-L and bigG side by side; its extra conditioning ``label_emb`` /
``add_embedding`` takes 2816 values) and 1280 the SDXL refiner (bigG alone, 2560). An input
convolution over 9 channels (4 latent + 1 mask + 4 masked-image latent) is an inpainting model.

What keys cannot tell, names and metadata do (see :func:`few_step_of` and
:func:`prediction_of`): the distilled few-step variants and SD2's v-prediction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from studio.errors import BadInputError
from studio.models.sd.model import FewStep, SDFamily

KeyShapes = Mapping[str, Sequence[int]]

ORIGINAL_UNET = "model.diffusion_model."
_CONTEXT_FAMILY = {
    768: SDFamily.SD1,
    1024: SDFamily.SD2,
    2048: SDFamily.SDXL,
    1280: SDFamily.SDXL_REFINER,
}
#: width of the extra (size and crop) conditioning SDXL adds to the time embedding
_ADDED_CONDITIONING = {SDFamily.SDXL: 2816, SDFamily.SDXL_REFINER: 2560}
_LATENT, _INPAINT = 4, 9


def detect_family(shapes: KeyShapes) -> tuple[SDFamily, bool]:
    """(family, inpainting) of a checkpoint in either layout; :class:`BadInputError` saying
    what the file looks like when it is not a Stable Diffusion checkpoint Studio runs."""
    if "edm_mean" in shapes or "edm_vpred.sigma_max" in shapes:
        raise BadInputError("an EDM model (Playground v2.5 or similar), which Studio does not run")
    unet = _unet_keys(shapes)
    if unet is None:
        raise BadInputError(
            f"not a Stable Diffusion checkpoint: it looks like {describe_weights(shapes)}"
        )
    prefix, conv_in, layout = unet
    in_channels = int(shapes[conv_in][1]) if len(shapes[conv_in]) == 4 else -1
    contexts = {
        int(shape[1])
        for key, shape in shapes.items()
        if key.startswith(prefix) and key.endswith("attn2.to_k.weight") and len(shape) == 2
    }
    if len(contexts) != 1 or (context := contexts.pop()) not in _CONTEXT_FAMILY:
        found = f"text width {sorted(contexts)}" if contexts else "no cross-attention"
        raise BadInputError(
            f"not a Stable Diffusion 1, 2 or XL checkpoint ({found}); SD3, Flux and other "
            "diffusion models are not supported"
        )
    family = _CONTEXT_FAMILY[context]
    added = _added_conditioning(shapes, prefix, layout)
    if added != _ADDED_CONDITIONING.get(family):
        raise BadInputError(
            f"an unknown Stable Diffusion variant (text width {context}, extra conditioning "
            f"{added or 'none'})"
        )
    if in_channels == _INPAINT:
        return family, True
    if in_channels == _LATENT:
        return family, False
    what = {7: "the SD x4 upscaler", 8: "an InstructPix2Pix model"}.get(in_channels)
    raise BadInputError(
        f"not a text-to-image or inpainting checkpoint: the UNet takes {in_channels} input "
        f"channels{f' ({what})' if what else ''}"
    )


def family_of_unet_config(config: Mapping[str, object]) -> tuple[SDFamily, bool]:
    """(family, inpainting) from a diffusers folder's ``unet/config.json``."""
    context = config.get("cross_attention_dim")
    family = _CONTEXT_FAMILY.get(context) if isinstance(context, int) else None
    added = config.get("projection_class_embeddings_input_dim")
    if family is None or added != _ADDED_CONDITIONING.get(family):
        raise BadInputError(
            f"not a Stable Diffusion 1, 2 or XL UNet (cross_attention_dim {context!r}, "
            f"projection_class_embeddings_input_dim {added!r})"
        )
    channels = config.get("in_channels")
    if channels not in (_LATENT, _INPAINT):
        raise BadInputError(f"not a text-to-image or inpainting UNet ({channels!r} input channels)")
    return family, channels == _INPAINT


def _unet_keys(shapes: KeyShapes) -> tuple[str, str, str] | None:
    """(key prefix, input conv key, "original" or "diffusers") of the UNet, None if none."""
    conv = ORIGINAL_UNET + "input_blocks.0.0.weight"
    if conv in shapes:
        return ORIGINAL_UNET, conv, "original"
    for prefix in ("", "unet."):
        conv = prefix + "conv_in.weight"
        if conv in shapes and prefix + "down_blocks.0.resnets.0.conv1.weight" in shapes:
            return prefix, conv, "diffusers"
    return None


def _added_conditioning(shapes: KeyShapes, prefix: str, layout: str) -> int | None:
    key = "label_emb.0.0.weight" if layout == "original" else "add_embedding.linear_1.weight"
    shape = shapes.get(prefix + key)
    return int(shape[1]) if shape is not None and len(shape) == 2 else None


_LORA_KEY = re.compile(r"^lora_(unet|te)|[._]lora_(down|up|A|B)[._]|\.lora\.(down|up)\.")


def is_lora(shapes: KeyShapes) -> bool:
    """Whether the tensors are a LoRA (kohya/A1111, diffusers or peft layout)."""
    return any(_LORA_KEY.search(k) for k in shapes)


def describe_weights(shapes: KeyShapes) -> str:
    """A few words on what a weight file holds ("a LoRA", "a VAE on its own", ...)."""
    keys = list(shapes)
    if not keys:
        return "an empty file"
    if ORIGINAL_UNET + "input_blocks.0.0.weight" in shapes or _unet_keys(shapes):
        return "a Stable Diffusion checkpoint"
    joined = "\n".join(keys[:2000])
    if is_lora(shapes):
        return "a LoRA (add it as a LoRA to a checkpoint)"
    if any(k in shapes for k in ("emb_params", "clip_l", "clip_g")) or "string_to_param" in joined:
        return "a textual-inversion embedding"
    if re.search(r"^(control_model\.|controlnet_cond_embedding|input_hint_block)", joined, re.M):
        return "a ControlNet"
    if re.search(r"joint_blocks\.|double_blocks\.|single_blocks\.", joined):
        return "an SD3 or Flux model, which Studio does not run"
    if re.search(r"^(first_stage_model\.)?(encoder|decoder)\.(conv_in|up\.|down\.)", joined, re.M):
        return "a VAE on its own"
    if re.search(r"^(conv_first|model\.0|body\.|head\.)", joined, re.M):
        return "an image upscaler (open it under Upscale)"
    if re.search(r"text_model\.|transformer\.resblocks", joined):
        return "a text encoder on its own"
    return f"something else ({len(keys)} tensors, e.g. '{keys[0]}')"


# -- what keys cannot tell ------------------------------------------------------------------
#: metadata keys whose text may name a distilled variant (the ModelSpec standard, kohya's)
_NAMING_METADATA = (
    "modelspec.title",
    "modelspec.architecture",
    "ss_output_name",
    "name",
)
_FEW_STEP_WORDS = (
    (FewStep.LIGHTNING, re.compile(r"lightning", re.I)),
    (FewStep.LCM, re.compile(r"(?<![a-z])lcm|latent.consistency", re.I)),
    (FewStep.TURBO, re.compile(r"turbo", re.I)),
)


def few_step_of(name: str, metadata: Mapping[str, str]) -> FewStep:
    """Turbo, LCM or Lightning from the file's name and its metadata (``modelspec.title``,
    ``modelspec.architecture``, kohya's ``ss_output_name``; not free-text descriptions, which
    may mention other models): distillation changes weights, not keys or shapes. A
    renamed file without metadata loads as a plain model (more steps than it needs, still right).
    """
    text = " ".join([name, *(metadata.get(k, "") for k in _NAMING_METADATA)])
    return next((kind for kind, pattern in _FEW_STEP_WORDS if pattern.search(text)), FewStep.NONE)


def prediction_of(
    family: SDFamily, name: str, metadata: Mapping[str, str], shapes: KeyShapes | None = None
) -> str:
    """``"v_prediction"`` or ``"epsilon"``: the metadata's ``modelspec.prediction_type`` first,
    then a ``v_pred`` marker tensor (the convention of v-prediction SDXL fine-tunes), then the
    name (``768-v``, ``v-pred``). Without any of these SD2 defaults to v-prediction, as its
    popular 768 release and most SD2 fine-tunes are, unless the name says ``512`` or ``base``;
    SD1 and SDXL default to epsilon."""
    stated = metadata.get("modelspec.prediction_type", "").strip().lower()
    if stated in ("v", "v_prediction", "v-prediction"):
        return "v_prediction"
    if stated in ("epsilon", "eps"):
        return "epsilon"
    if shapes is not None and "v_pred" in shapes:
        return "v_prediction"
    lowered = name.lower()
    if re.search(r"768-v|v[-_]?pred", lowered):
        return "v_prediction"
    if family is SDFamily.SD2 and not re.search(r"512|base", lowered):
        return "v_prediction"
    return "epsilon"


def licence_of(metadata: Mapping[str, str]) -> str:
    """The licence text or name a file carries in its metadata ('' when none)."""
    for key in ("modelspec.license", "license", "licence", "modelspec.licence"):
        if value := metadata.get(key, "").strip():
            return value
    return ""
