"""Listing the artist's SD checkpoints and LoRAs from Studio's models folder and another
tool's folder (A1111 or ComfyUI layout), from headers only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from studio.models.sd.discovery import CHECKPOINT, LORA, list_sd_models, tool_folders
from studio.models.sd.model import FewStep, SDFamily
from studio.settings import Settings

U = "model.diffusion_model."


def checkpoint(
    path: Path,
    context: int = 768,
    channels: int = 4,
    added: int | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """A header-true miniature: the decisive tensors at their real shapes (all zeros)."""
    state = {
        U + "input_blocks.0.0.weight": torch.zeros(320, channels, 3, 3),
        U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(640, context),
        "first_stage_model.decoder.conv_out.weight": torch.zeros(3, 8, 3, 3),
    }
    if added:
        state[U + "label_emb.0.0.weight"] = torch.zeros(8, added)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return path


def lora(path: Path, context: int = 768) -> Path:
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: torch.zeros(4, context)}, str(path), metadata={"modelspec.license": "MIT"})
    return path


def test_a1111_root_lists_checkpoints_and_loras(tmp_path) -> None:
    root = tmp_path / "stable-diffusion-webui"
    checkpoint(
        root / "models/Stable-diffusion/dreamshaper_8.safetensors",
        metadata={"modelspec.license": "CreativeML Open RAIL-M"},
    )
    checkpoint(root / "models/Stable-diffusion/xl/sd_xl_turbo_1.0.safetensors", 2048, added=2816)
    checkpoint(root / "models/Stable-diffusion/512-inpainting.safetensors", 1024, channels=9)
    lora(root / "models/Lora/style.safetensors")
    (root / "models/Stable-diffusion/Put Stable Diffusion checkpoints here.txt").write_text("x")
    save_file({"x": torch.zeros(2)}, str(root / "models/Stable-diffusion/junk.safetensors"))

    entries = list_sd_models(None, root)
    by_name = {e.name: e for e in entries}
    assert [e.kind for e in entries] == [CHECKPOINT] * 3 + [LORA]  # checkpoints first
    assert set(by_name) == {"dreamshaper_8", "sd_xl_turbo_1.0", "512-inpainting", "style"}
    dream = by_name["dreamshaper_8"]
    assert dream.family is SDFamily.SD1 and dream.licence == "CreativeML Open RAIL-M"
    assert dream.size_bytes == dream.path.stat().st_size > 0
    turbo = by_name["sd_xl_turbo_1.0"]
    assert turbo.family is SDFamily.SDXL and turbo.few_step is FewStep.TURBO
    assert by_name["512-inpainting"].inpainting and by_name["512-inpainting"].family is SDFamily.SD2
    assert by_name["style"].family is SDFamily.SD1 and by_name["style"].licence == "MIT"


@pytest.mark.parametrize("given", ["root", "models", "models/checkpoints", "models/loras"])
def test_comfyui_folder_at_any_level(tmp_path, given: str) -> None:
    root = tmp_path / "ComfyUI"
    checkpoint(root / "models/checkpoints/v1-5.safetensors")
    lora(root / "models/loras/detail.safetensors", 2048)
    folder = root if given == "root" else root / given
    names = {(e.name, e.kind, e.family) for e in list_sd_models(None, folder)}
    assert names == {("v1-5", CHECKPOINT, SDFamily.SD1), ("detail", LORA, SDFamily.SDXL)}


def test_user_models_folder_mixed_with_other_files(tmp_path) -> None:
    models = tmp_path / "models"
    checkpoint(models / "mine.safetensors")
    lora(models / "loras" / "ink.safetensors")
    save_file({"conv_first.weight": torch.zeros(4, 3, 3, 3)}, str(models / "my-esrgan.safetensors"))
    (models / "notes.ckpt").write_bytes(b"not a pickle")
    legacy = {U + "input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}
    torch.save(legacy, models / "old-format.ckpt", _use_new_zipfile_serialization=False)
    torch.save(legacy, models / "old-upscaler.pth", _use_new_zipfile_serialization=False)
    entries = list_sd_models(models, None)
    assert {(e.name, e.kind, e.family) for e in entries} == {
        ("mine", CHECKPOINT, SDFamily.SD1),
        ("ink", LORA, SDFamily.SD1),
        ("old-format", CHECKPOINT, None),  # an old .ckpt cannot be read without loading it
    }


def test_diffusers_folder_and_ckpt_are_listed_without_reading_weights(
    tmp_path, monkeypatch
) -> None:
    root = tmp_path / "ComfyUI"
    folder = root / "models/diffusers/sd-turbo"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    config = {"cross_attention_dim": 1024, "in_channels": 4}
    (folder / "unet/config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text("---\nlicense: other\n---\n")
    ckpt = root / "models/checkpoints/old.ckpt"
    ckpt.parent.mkdir(parents=True)
    state = {
        U + "input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
        U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 768),
    }
    torch.save({"state_dict": state}, ckpt)

    def no_weights(*args, **kwargs):
        raise AssertionError("listing read weights")

    monkeypatch.setattr("studio.models.sd.loading.read_state_dict", no_weights)
    monkeypatch.setattr("safetensors.torch.load_file", no_weights)
    by_name = {e.name: e for e in list_sd_models(None, root)}
    assert by_name["sd-turbo"].family is SDFamily.SD2 and by_name["sd-turbo"].licence == "other"
    assert by_name["sd-turbo"].few_step is FewStep.TURBO
    assert by_name["old"].family is SDFamily.SD1


def test_missing_or_empty_folders_list_nothing(tmp_path) -> None:
    assert list_sd_models(tmp_path / "absent", tmp_path / "also-absent") == []
    assert tool_folders(tmp_path / "absent") == []
    assert list_sd_models(tmp_path, None) == []


def test_the_setting_round_trips_and_is_validated(tmp_path) -> None:
    settings = Settings(sd_models_folder="/home/artist/stable-diffusion-webui")
    path = tmp_path / "settings.json"
    assert settings.save(path)
    assert Settings.load(path).sd_models_folder == "/home/artist/stable-diffusion-webui"
    path.write_text(json.dumps({"sd_models_folder": 42}))
    loaded = Settings.load(path)
    assert loaded.sd_models_folder == "" and "sd_models_folder" in (loaded.load_note or "")
