"""Family, inpainting, few-step and prediction type from keys, shapes, names and metadata;
the bundled configs build the published model sizes; the bundled tokenizer gives CLIP's ids."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import torch

from studio.errors import BadInputError
from studio.models.sd.family import (
    describe_weights,
    detect_family,
    family_of_unet_config,
    few_step_of,
    licence_of,
    prediction_of,
)
from studio.models.sd.loading import CONFIGS, config_folder
from studio.models.sd.model import FewStep, SDFamily
from studio.models.sd.tokenizer import clip_tokenizer

U = "model.diffusion_model."
ROOT = Path(__file__).resolve().parents[3]


def original(context: int, in_channels: int = 4, added: int | None = None) -> dict:
    """The shapes that decide: input conv, one cross-attention, SDXL's extra conditioning."""
    shapes = {
        U + "input_blocks.0.0.weight": (320, in_channels, 3, 3),
        U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, context),
        U + "middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, context),
        "first_stage_model.decoder.conv_out.weight": (3, 128, 3, 3),
    }
    if added is not None:
        shapes[U + "label_emb.0.0.weight"] = (1280, added)
    return shapes


def diffusers_layout(context: int, in_channels: int = 4, added: int | None = None) -> dict:
    shapes = {
        "conv_in.weight": (320, in_channels, 3, 3),
        "down_blocks.0.resnets.0.conv1.weight": (320, 320, 3, 3),
        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": (640, context),
    }
    if added is not None:
        shapes["add_embedding.linear_1.weight"] = (1280, added)
    return shapes


CASES = [
    (768, 4, None, SDFamily.SD1, False),
    (768, 9, None, SDFamily.SD1, True),
    (1024, 4, None, SDFamily.SD2, False),
    (1024, 9, None, SDFamily.SD2, True),
    (2048, 4, 2816, SDFamily.SDXL, False),
    (2048, 9, 2816, SDFamily.SDXL, True),
    (1280, 4, 2560, SDFamily.SDXL_REFINER, False),
]


@pytest.mark.parametrize(("context", "channels", "added", "family", "inpainting"), CASES)
def test_family_from_either_layout(context, channels, added, family, inpainting) -> None:
    assert detect_family(original(context, channels, added)) == (family, inpainting)
    assert detect_family(diffusers_layout(context, channels, added)) == (family, inpainting)
    prefixed = {"unet." + k: v for k, v in diffusers_layout(context, channels, added).items()}
    assert detect_family(prefixed) == (family, inpainting)
    unet_config = {
        "cross_attention_dim": context,
        "in_channels": channels,
        "projection_class_embeddings_input_dim": added,
    }
    assert family_of_unet_config(unet_config) == (family, inpainting)


@pytest.mark.parametrize(
    ("shapes", "words"),
    [
        (original(768, 7), "SD x4 upscaler"),
        (original(768, 8), "InstructPix2Pix"),
        (original(4096), "SD3, Flux"),
        (original(2048), "unknown Stable Diffusion variant"),  # XL width, no size conditioning
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)}, "a LoRA"),
        ({"unet.mid_block.attentions.0.proj_in.lora_A.weight": (4, 320)}, "a LoRA"),
        ({"encoder.conv_in.weight": (128, 3, 3, 3), "decoder.up.0.block.0": (1,)}, "VAE"),
        ({"control_model.input_blocks.0.0.weight": (320, 4, 3, 3)}, "ControlNet"),
        ({"emb_params": (2, 768)}, "textual-inversion"),
        ({"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": (1, 1)}, "Flux"),
        ({"conv_first.weight": (64, 3, 3, 3), "body.0.weight": (1,)}, "upscaler"),
        ({}, "empty"),
        ({**original(2048, added=2816), "edm_mean": (1, 4, 1, 1)}, "EDM model"),
    ],
)
def test_what_is_not_a_checkpoint_is_named(shapes, words) -> None:
    with pytest.raises(BadInputError, match=words):
        detect_family(shapes)


def test_describe_weights_recognises_a_checkpoint() -> None:
    assert describe_weights(original(768)) == "a Stable Diffusion checkpoint"


@pytest.mark.parametrize(
    ("name", "metadata", "expected"),
    [
        ("sd_xl_turbo_1.0_fp16", {}, FewStep.TURBO),
        ("sd_turbo", {}, FewStep.TURBO),
        ("sdxl_lightning_4step", {}, FewStep.LIGHTNING),
        ("LCM_Dreamshaper_v7", {}, FewStep.LCM),
        ("dreamshaper-lcm", {}, FewStep.LCM),
        ("my-model", {"modelspec.title": "SDXL Turbo"}, FewStep.TURBO),
        ("my-model", {"modelspec.architecture": "stable-diffusion-xl-v1-base/lcm"}, FewStep.LCM),
        ("realcartoon", {}, FewStep.NONE),  # "cartoon" is not "turbo"
        ("dreamshaper_8", {"modelspec.title": "DreamShaper"}, FewStep.NONE),
    ],
)
def test_few_step_variants_from_name_and_metadata(name, metadata, expected) -> None:
    assert few_step_of(name, metadata) is expected


@pytest.mark.parametrize(
    ("family", "name", "metadata", "shapes", "expected"),
    [
        (SDFamily.SD2, "v2-1_768-ema-pruned", {}, None, "v_prediction"),
        (SDFamily.SD2, "v2-1_512-ema-pruned", {}, None, "epsilon"),
        (SDFamily.SD2, "512-base-ema", {}, None, "epsilon"),
        (SDFamily.SD2, "some-sd2-finetune", {}, None, "v_prediction"),  # the documented default
        (SDFamily.SD2, "x", {"modelspec.prediction_type": "epsilon"}, None, "epsilon"),
        (SDFamily.SD1, "dreamshaper", {}, None, "epsilon"),
        (SDFamily.SDXL, "noob-vpred", {}, None, "v_prediction"),
        (SDFamily.SDXL, "plain", {}, {"v_pred": ()}, "v_prediction"),
        (SDFamily.SDXL, "plain", {"modelspec.prediction_type": "v"}, None, "v_prediction"),
        (SDFamily.SDXL, "plain", {}, None, "epsilon"),
    ],
)
def test_prediction_type(family, name, metadata, shapes, expected) -> None:
    assert prediction_of(family, name, metadata, shapes) == expected


def test_licence_from_metadata() -> None:
    assert licence_of({"modelspec.license": " CreativeML Open RAIL++-M "}) == (
        "CreativeML Open RAIL++-M"
    )
    assert licence_of({"modelspec.title": "x"}) == ""


# -- bundled configs ------------------------------------------------------------------------
#: published parameter counts: SD 1.5 UNet, VAE and CLIP ViT-L; SD 2.x UNet and OpenCLIP ViT-H
#: (23 layers: SD2 uses the penultimate); SDXL UNet and OpenCLIP bigG with its projection
PARAMETERS = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd15-inpaint": {"unet": 859_535_364},
    "sd21": {"unet": 865_910_724, "text_encoder": 340_387_840},
    "sd21-base": {"unet": 865_910_724, "text_encoder": 340_387_840},
    "sd2-inpaint": {"unet": 865_925_124},
    "sdxl-base": {
        "unet": 2_567_463_684,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    },
    "sdxl-inpaint": {"unet": 2_567_478_084},
    "sdxl-refiner": {"unet": 2_259_526_660, "text_encoder_2": 694_659_840},
}


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_bundled_configs_build_the_published_models(name: str) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = CONFIGS / name
    builders = {
        "unet": lambda p: UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(p)),
        "vae": lambda p: AutoencoderKL.from_config(AutoencoderKL.load_config(p)),
        "text_encoder": lambda p: CLIPTextModel(CLIPTextConfig.from_pretrained(p)),
        "text_encoder_2": lambda p: CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(p)),
    }
    with torch.device("meta"):  # shapes only: no memory, no time
        for part, count in PARAMETERS[name].items():
            model = builders[part](folder / part)
            assert sum(p.numel() for p in model.parameters()) == count, (name, part)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]


def test_config_folder_per_family() -> None:
    assert config_folder(SDFamily.SD1, False, "epsilon").name == "sd15"
    assert config_folder(SDFamily.SD2, False, "v_prediction").name == "sd21"
    assert config_folder(SDFamily.SD2, False, "epsilon").name == "sd21-base"
    assert config_folder(SDFamily.SDXL, True, "epsilon").name == "sdxl-inpaint"
    with pytest.raises(BadInputError):
        config_folder(SDFamily.SDXL_REFINER, True, "epsilon")
    scheduler = json.loads((CONFIGS / "sd21" / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "v_prediction"


def test_bundled_files_are_package_data() -> None:
    """Every bundled config, vocabulary and licence file is matched by pyproject's package-data."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["studio.models.sd"]
    package = ROOT / "studio" / "models" / "sd"
    files = {p for p in (package / "configs").rglob("*") if p.is_file()}
    matched = {p for pattern in patterns for p in package.glob(pattern)}  # setuptools' globs
    assert len(files) > 40 and files <= matched, sorted(map(str, files - matched))
    assert (package / "configs" / "clip-tokenizer" / "LICENSE-open_clip.txt").is_file()


# -- tokenizer ------------------------------------------------------------------------------
def test_tokenizer_gives_clip_ids() -> None:
    ids = clip_tokenizer()("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert ids[:7] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[7:] == [49407] * 70 and len(ids) == 77
    bang = clip_tokenizer("!")("Cat!!", padding="max_length", max_length=77).input_ids
    # "!!" stays one token (748) although "!" pads: open_clip's ids, not "!" "!"
    assert bang[:4] == [49406, 2368, 748, 49407] and bang[4:] == [0] * 73
    assert clip_tokenizer("!").pad_token_id == 0 and clip_tokenizer().model_max_length == 77


SENTENCES = [
    "a photo of a cat",
    "A Watercolor   painting of a LIGHTHOUSE at dusk, trending on artstation!!",
    "portrait, 8k, (masterpiece:1.2), highly-detailed; don't blur",
    "café crème brûlée 🍮 naïve 日本",
    "",
]


def test_tokenizer_matches_open_clip() -> None:
    """Skips unless open_clip is importable (Studio does not depend on it)."""
    tokenizer_module = pytest.importorskip("open_clip.tokenizer")
    reference = tokenizer_module.SimpleTokenizer()
    ours = clip_tokenizer("!")
    for text in SENTENCES:
        expected = reference([text])[0].tolist()
        got = ours(text, padding="max_length", max_length=77, truncation=True).input_ids
        assert got == expected, text
