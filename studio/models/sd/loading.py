"""Load an artist's Stable Diffusion files offline: a diffusers folder or one checkpoint file.

Nothing is downloaded. A single file gets its configs from the small diffusers config folders
Studio ships (``configs/``, one per family) and its tokenizers from the bundled CLIP vocabulary
(:mod:`studio.models.sd.tokenizer`); a folder brings its own. Weights are read only with
safetensors or ``torch.load(weights_only=True)`` (diffusers and transformers 5 load a folder's
``.bin`` files that way too; a test holds them to it).

A single file is read once, by Studio's safe reader (which also refuses NaN weights), and each
part is built from that state dict with diffusers' own converters: ``from_single_file`` of the
UNet and VAE classes with ``config=<bundled folder>`` and ``local_files_only=True``, and the
CLIP converter its pipelines use. The pipeline-level ``from_single_file`` would read the file a
second time for ``.ckpt`` files and skips the NaN check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from studio.errors import BadInputError, BadWeightsError, MissingModelError, StudioError
from studio.models.loading import read_state_dict
from studio.models.sd.family import (
    detect_family,
    family_of_unet_config,
    few_step_of,
    licence_of,
    prediction_of,
)
from studio.models.sd.header import Header, read_safetensors_header
from studio.models.sd.model import FewStep, SDFamily, SDModel
from studio.models.sd.quiet import quiet_hub_libraries, quiet_pipeline
from studio.models.sd.tokenizer import clip_tokenizer

CONFIGS = Path(__file__).resolve().parent / "configs"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")
_PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth")
_XL = (SDFamily.SDXL, SDFamily.SDXL_REFINER)


class OldFormatError(BadInputError):
    """A pre-zip ``torch.save`` file: its index cannot be read without reading it all."""


def config_folder(family: SDFamily, inpainting: bool, prediction: str) -> Path:
    """The bundled diffusers config folder for a family (``configs/<name>``)."""
    if family is SDFamily.SD1:
        name = "sd15-inpaint" if inpainting else "sd15"
    elif family is SDFamily.SD2:
        name = (
            "sd2-inpaint" if inpainting else "sd21" if prediction == "v_prediction" else "sd21-base"
        )
    elif family is SDFamily.SDXL:
        name = "sdxl-inpaint" if inpainting else "sdxl-base"
    elif inpainting:
        raise BadInputError("an inpainting SDXL refiner is not a model Studio knows")
    else:
        name = "sdxl-refiner"
    return CONFIGS / name


def pipeline_class(family: SDFamily, inpainting: bool) -> type:
    """The diffusers pipeline class of a family; the refiner only refines (img2img)."""
    import diffusers

    if family is SDFamily.SDXL_REFINER:
        return diffusers.StableDiffusionXLImg2ImgPipeline
    if family is SDFamily.SDXL:
        name = "StableDiffusionXLInpaintPipeline" if inpainting else "StableDiffusionXLPipeline"
    else:
        name = "StableDiffusionInpaintPipeline" if inpainting else "StableDiffusionPipeline"
    return getattr(diffusers, name)


def is_sd_source(path: Path) -> bool:
    """Whether ``path`` is a Stable Diffusion folder or checkpoint Studio can load (read from
    the folder's configs or the file's header; the weights are not read)."""
    try:
        if path.is_dir():
            _folder_family(path)
        elif path.suffix.lower() == ".safetensors":
            detect_family(read_safetensors_header(path).shapes)
        elif path.suffix.lower() in _PICKLE_SUFFIXES:
            try:
                shapes = pickle_shapes(path, read_legacy=False)
            except OldFormatError:
                return path.suffix.lower() == ".ckpt"  # loading will read it and tell
            detect_family(shapes)
        else:
            return False
    except (StudioError, OSError):
        return False
    return True


def load_sd_model(
    path: Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    config_dir: Path | None = None,
) -> SDModel:
    """The model in ``path`` (a diffusers folder or a ``.safetensors``/``.ckpt``/``.pt`` file)
    on ``device`` in ``dtype``. ``config_dir`` replaces the bundled config folder for a single
    file (tests use tiny configs). Raises :class:`MissingModelError`, :class:`BadInputError`
    or :class:`BadWeightsError` with one sentence naming the file."""
    path = Path(path)
    if not path.exists():
        raise MissingModelError(f"{path}: no such file or folder")
    quiet_hub_libraries()
    if path.is_dir():
        model = _load_folder(path, dtype)
    elif path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        model = _load_single_file(path, dtype, config_dir)
    else:
        raise BadInputError(
            f"{path.name}: not a Stable Diffusion checkpoint (use a .safetensors or .ckpt file "
            "or a diffusers folder)"
        )
    if torch.device(device).type != "cpu":  # the parts are built on the CPU
        model.pipe.to(torch.device(device))
    quiet_pipeline(model.pipe)
    return model


# -- single files ---------------------------------------------------------------------------
def _load_single_file(path: Path, dtype: torch.dtype, config_dir: Path | None) -> SDModel:
    if path.suffix.lower() == ".safetensors":
        header = read_safetensors_header(path)  # the family check reads no weights
        family, inpainting = _detect(path, header.shapes)
        state = read_state_dict(path)
    else:
        state = read_state_dict(path)  # weights_only=True
        header = Header({k: tuple(v.shape) for k, v in state.items()})
        family, inpainting = _detect(path, header.shapes)
    _check_parts(path, family, header.shapes)
    prediction = prediction_of(family, path.stem, header.metadata, header.shapes)
    folder = config_dir or config_folder(family, inpainting, prediction)
    try:
        parts = _build_parts(state, family, folder, dtype)
    except (ValueError, KeyError, RuntimeError, IndexError) as exc:
        raise BadWeightsError(
            f"{path.name}: its weights do not fit a {family.value} model ({_short(exc)})"
        ) from None
    del state
    parts["scheduler"] = _scheduler(folder, prediction)
    pipe = pipeline_class(family, inpainting)(**parts, **_pipeline_options(family))
    return SDModel(
        family=family,
        pipe=pipe,
        source=path,
        inpainting=inpainting,
        few_step=few_step_of(path.stem, header.metadata),
        prediction=prediction,
        licence=licence_of(header.metadata),
    )


def _detect(path: Path, shapes: dict[str, tuple[int, ...]]) -> tuple[SDFamily, bool]:
    try:
        return detect_family(shapes)
    except BadInputError as exc:
        raise BadInputError(f"{path.name}: {exc}") from None


#: key prefixes of each part in the original layout, per family
_PARTS = {
    SDFamily.SD1: {"text encoder": "cond_stage_model.transformer."},
    SDFamily.SD2: {"text encoder": "cond_stage_model.model."},
    SDFamily.SDXL: {
        "CLIP ViT-L text encoder": "conditioner.embedders.0.transformer.",
        "OpenCLIP bigG text encoder": "conditioner.embedders.1.model.",
    },
    SDFamily.SDXL_REFINER: {"OpenCLIP bigG text encoder": "conditioner.embedders.0.model."},
}


def _check_parts(path: Path, family: SDFamily, shapes: dict[str, tuple[int, ...]]) -> None:
    """A checkpoint without its VAE or text encoder (a UNet-only file) cannot make images."""
    if not any(k.startswith("model.diffusion_model.") for k in shapes):
        raise BadInputError(
            f"{path.name}: a UNet in diffusers' layout on its own; Studio loads full "
            "checkpoints (UNet, VAE and text encoders) or diffusers folders"
        )
    wanted = {"VAE": "first_stage_model.", **_PARTS[family]}
    missing = [
        name for name, prefix in wanted.items() if not any(k.startswith(prefix) for k in shapes)
    ]
    if missing:
        raise BadInputError(
            f"{path.name}: this {family.value} checkpoint has no {' and no '.join(missing)}; "
            "Studio needs a full checkpoint"
        )


def _build_parts(
    state: dict[str, torch.Tensor], family: SDFamily, folder: Path, dtype: torch.dtype
) -> dict[str, Any]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    common = {"config": str(folder), "local_files_only": True}
    parts: dict[str, Any] = {
        "unet": UNet2DConditionModel.from_single_file(
            state, subfolder="unet", dtype=dtype, **common
        ),
        "vae": AutoencoderKL.from_single_file(state, subfolder="vae", dtype=dtype, **common),
    }

    def clip(cls: type, subfolder: str) -> Any:
        return create_diffusers_clip_model_from_ldm(
            cls, state, subfolder=subfolder, torch_dtype=dtype, **common
        )

    if family is SDFamily.SD1:
        parts.update(text_encoder=clip(CLIPTextModel, "text_encoder"), tokenizer=clip_tokenizer())
    elif family is SDFamily.SD2:
        parts.update(
            text_encoder=clip(CLIPTextModel, "text_encoder"), tokenizer=clip_tokenizer("!")
        )
    else:
        if family is SDFamily.SDXL:
            parts.update(
                text_encoder=clip(CLIPTextModel, "text_encoder"), tokenizer=clip_tokenizer()
            )
        else:
            parts.update(text_encoder=None, tokenizer=None)
        parts.update(
            text_encoder_2=clip(CLIPTextModelWithProjection, "text_encoder_2"),
            tokenizer_2=clip_tokenizer("!"),
        )
    return parts


def _scheduler(folder: Path, prediction: str) -> Any:
    import diffusers

    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    cls = getattr(diffusers, config.get("_class_name", "DDIMScheduler"))
    return cls.from_config({**config, "prediction_type": prediction})


def _pipeline_options(family: SDFamily) -> dict[str, Any]:
    # Studio is the artist's own tool working on their own files (as A1111 and ComfyUI are):
    # no safety checker, which would also need weights that are not in any checkpoint.
    if family in _XL:
        return {"requires_aesthetics_score": True} if family is SDFamily.SDXL_REFINER else {}
    return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def pickle_shapes(path: Path, *, read_legacy: bool = True) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a ``.ckpt`` without reading its tensors (memory-mapped, weights
    only). The older non-zip format cannot be mapped: it is read in full with
    ``read_legacy``, else :class:`BadInputError`."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, ValueError):
        with open(path, "rb") as f:
            if f.read(1) != b"\x80":  # neither a zip nor a pickle: not a torch.save file
                raise BadInputError(f"{path.name}: not a PyTorch checkpoint") from None
        if not read_legacy:
            raise OldFormatError(
                f"{path.name}: an old-format checkpoint (read only to load)"
            ) from None
        obj = read_state_dict(path)
    except Exception as exc:  # an unpickling error: unsafe or corrupt, either way not loadable
        raise BadWeightsError(f"{path.name}: not a readable weight file ({_short(exc)})") from None
    while isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise BadInputError(f"{path.name}: holds no tensors")
    return {str(k): tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)}


# -- diffusers folders ----------------------------------------------------------------------
def _folder_family(folder: Path) -> tuple[SDFamily, bool, dict[str, Any]]:
    index_path, unet_path = folder / "model_index.json", folder / "unet" / "config.json"
    if not index_path.is_file() or not unet_path.is_file():
        raise BadInputError(
            f"{folder.name}: not a diffusers model folder "
            "(no model_index.json and unet/config.json)"
        )
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        unet = json.loads(unet_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{folder.name}: unreadable model config ({_short(exc)})") from None
    if not isinstance(index, dict) or not isinstance(unet, dict):
        raise BadInputError(f"{folder.name}: unreadable model config")
    try:
        family, inpainting = family_of_unet_config(unet)
    except BadInputError as exc:
        raise BadInputError(f"{folder.name}: {exc}") from None
    return family, inpainting, {"index": index, "unet": unet}


def _load_folder(folder: Path, dtype: torch.dtype) -> SDModel:
    family, inpainting, configs = _folder_family(folder)
    extra: dict[str, Any] = {}
    index = configs["index"]
    for name, pad in (("tokenizer", "eos"), ("tokenizer_2", "!")):
        listed = index.get(name)
        if isinstance(listed, list) and listed[:1] != [None] and not (folder / name).is_dir():
            if name == "tokenizer" and family is SDFamily.SD2:
                pad = "!"
            extra[name] = clip_tokenizer(pad)  # a folder without its tokenizer: the bundled one
    try:
        pipe = pipeline_class(family, inpainting).from_pretrained(
            str(folder),
            dtype=dtype,
            local_files_only=True,
            **_pipeline_options(family),
            **extra,
        )
    except StudioError:
        raise
    except Exception as exc:  # diffusers reports a missing or broken part in many ways
        raise BadWeightsError(f"{folder.name}: cannot be loaded ({_short(exc)})") from None
    prediction = str(pipe.scheduler.config.get("prediction_type", "epsilon"))
    few_step = few_step_of(folder.name, {})
    if pipe.scheduler.__class__.__name__ == "LCMScheduler" or configs["unet"].get(
        "time_cond_proj_dim"
    ):
        few_step = FewStep.LCM
    return SDModel(
        family=family,
        pipe=pipe,
        source=folder,
        inpainting=inpainting,
        few_step=few_step,
        prediction=prediction,
        licence=folder_licence(folder),
    )


def folder_licence(folder: Path) -> str:
    """The ``license:`` of a model card's front matter (Hugging Face folders carry one)."""
    card = folder / "README.md"
    try:
        text = card.read_text(encoding="utf-8", errors="replace")[:8192]
    except OSError:
        return ""
    match = re.match(r"---\s*\n(.*?)\n---", text, re.S)
    found = re.search(r"^license:\s*(.+)$", match.group(1), re.M) if match else None
    return found.group(1).strip().strip("'\"") if found else ""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
