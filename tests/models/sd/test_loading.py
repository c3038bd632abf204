"""Loading an artist's SD files offline: a tiny random SD1 pipeline written as an
original-layout single file (.safetensors and .ckpt) and as a diffusers folder loads back with
the same weights; broken, unsafe and wrong files get one clear message. Every socket
connection fails in this module."""

from __future__ import annotations

import pickle
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_sd import (
    tiny_sd1_pipeline,
    tiny_sd2_pipeline,
    tiny_sdxl_pipeline,
    unet_output,
    write_config_folder,
    write_single_file,
)

from studio.errors import BadInputError, BadWeightsError, MissingModelError
from studio.models.sd.loading import is_sd_source, load_sd_model
from studio.models.sd.model import FewStep, SDFamily
from tests.no_network import NetworkUsedError, blocked_network


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    with blocked_network():
        yield


@pytest.fixture(scope="module")
def pipe(no_network: None):
    return tiny_sd1_pipeline()


@pytest.fixture(scope="module")
def files(pipe, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sd")
    meta = {"modelspec.license": "CreativeML Open RAIL-M", "modelspec.title": "Tiny LCM"}
    out = {
        "config": write_config_folder(pipe, root / "config"),
        "safetensors": write_single_file(pipe, root / "tiny.safetensors", meta),
        "ckpt": write_single_file(pipe, root / "tiny.ckpt"),
        "folder": root / "folder",
    }
    pipe.save_pretrained(out["folder"], safe_serialization=True)
    (out["folder"] / "README.md").write_text("---\nlicense: openrail\n---\n# tiny\n")
    return out


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_network_really_is_blocked() -> None:
    with pytest.raises(NetworkUsedError):
        socket.create_connection(("127.0.0.1", 9))


@pytest.mark.parametrize("kind", ["safetensors", "ckpt"])
def test_single_file_round_trip(pipe, files, kind: str) -> None:
    model = load_sd_model(
        files[kind], device="cpu", dtype=torch.float32, config_dir=files["config"]
    )
    assert model.family is SDFamily.SD1 and not model.inpainting
    assert type(model.pipe).__name__ == "StableDiffusionPipeline"
    torch.testing.assert_close(unet_output(model.pipe.unet), unet_output(pipe.unet), atol=0, rtol=0)
    assert same_weights(model.pipe.vae, pipe.vae)
    assert same_weights(model.pipe.text_encoder, pipe.text_encoder)
    assert model.pipe.tokenizer.model_max_length == 77
    assert model.prediction == "epsilon"
    if kind == "safetensors":  # what the file said about itself
        assert model.licence == "CreativeML Open RAIL-M"
        assert model.few_step is FewStep.LCM
    else:
        assert model.licence == "" and model.few_step is FewStep.NONE


@pytest.mark.parametrize(
    ("build", "family", "pipeline", "prediction"),
    [
        (tiny_sd2_pipeline, SDFamily.SD2, "StableDiffusionPipeline", "v_prediction"),
        (tiny_sdxl_pipeline, SDFamily.SDXL, "StableDiffusionXLPipeline", "epsilon"),
    ],
)
def test_sd2_and_sdxl_single_files(tmp_path, build, family, pipeline, prediction) -> None:
    """OpenCLIP text encoders in OpenCLIP's names (SD2; SDXL beside CLIP ViT-L) load back."""
    pipe = build()
    path = write_single_file(pipe, tmp_path / "model.safetensors")
    model = load_sd_model(path, config_dir=write_config_folder(pipe, tmp_path / "config"))
    assert model.family is family and type(model.pipe).__name__ == pipeline
    assert model.prediction == prediction  # SD2 without a hint: v-prediction
    assert model.pipe.scheduler.config.prediction_type == prediction
    torch.testing.assert_close(unet_output(model.pipe.unet), unet_output(pipe.unet), atol=0, rtol=0)
    for part in ("text_encoder", "text_encoder_2"):
        if getattr(pipe, part, None) is not None:
            assert same_weights(getattr(model.pipe, part), getattr(pipe, part)), part
    if family is SDFamily.SDXL:
        assert model.pipe.tokenizer_2.pad_token_id == 0
        assert model.pipe.tokenizer.pad_token_id == 49407


def test_single_file_in_bf16(files) -> None:
    model = load_sd_model(files["safetensors"], dtype=torch.bfloat16, config_dir=files["config"])
    assert model.pipe.unet.dtype == torch.bfloat16
    assert model.pipe.text_encoder.dtype == torch.bfloat16


def test_inpainting_file_gets_the_inpaint_pipeline(tmp_path) -> None:
    inpaint = tiny_sd1_pipeline(inpainting=True)
    path = write_single_file(inpaint, tmp_path / "tiny-inpainting.safetensors")
    model = load_sd_model(path, config_dir=write_config_folder(inpaint, tmp_path / "config"))
    assert model.inpainting and type(model.pipe).__name__ == "StableDiffusionInpaintPipeline"
    torch.testing.assert_close(unet_output(model.pipe.unet), unet_output(inpaint.unet))


def test_diffusers_folder(pipe, files) -> None:
    model = load_sd_model(files["folder"])
    assert model.family is SDFamily.SD1 and model.source == files["folder"]
    torch.testing.assert_close(unet_output(model.pipe.unet), unet_output(pipe.unet), atol=0, rtol=0)
    assert model.licence == "openrail"
    assert model.pipe.safety_checker is None


def test_folder_without_tokenizer_uses_the_bundled_one(pipe, tmp_path) -> None:
    pipe.save_pretrained(tmp_path / "m", safe_serialization=True)
    for file in (tmp_path / "m" / "tokenizer").iterdir():
        file.unlink()
    (tmp_path / "m" / "tokenizer").rmdir()
    model = load_sd_model(tmp_path / "m")
    assert model.pipe.tokenizer("a cat").input_ids == [49406, 320, 2368, 49407]


class Payload:
    ran = False

    def __reduce__(self):
        return (exec, ("Payload.ran = True",))


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": Payload()}, path)
    with pytest.raises(BadWeightsError, match="refused"):
        load_sd_model(path)
    assert not Payload.ran
    assert not is_sd_source(path)


@pytest.mark.parametrize(
    ("part", "weights"),
    [("unet", "diffusion_pytorch_model"), ("text_encoder", "model")],  # diffusers, transformers
)
def test_a_folder_bin_with_code_is_refused(pipe, tmp_path, part: str, weights: str) -> None:
    folder = tmp_path / "m"
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / part / f"{weights}.safetensors").unlink()
    bin_name = "pytorch_model.bin" if part == "text_encoder" else f"{weights}.bin"
    with open(folder / part / bin_name, "wb") as f:
        pickle.dump({"conv_in.weight": Payload()}, f)
    with pytest.raises(BadWeightsError):
        load_sd_model(folder)
    assert not Payload.ran


def test_missing_corrupt_and_wrong_files(pipe, files, tmp_path) -> None:
    with pytest.raises(MissingModelError):
        load_sd_model(tmp_path / "nothing.safetensors")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(files["safetensors"].read_bytes()[:5000])
    with pytest.raises((BadInputError, BadWeightsError), match=r"cut\.safetensors"):
        load_sd_model(truncated)
    text = tmp_path / "notes.safetensors"
    text.write_text("just some words, not weights\n")
    with pytest.raises(BadInputError, match="not a safetensors file"):
        load_sd_model(text)
    readme = tmp_path / "readme.txt"
    readme.write_text("x")
    with pytest.raises(BadInputError, match=r"readme\.txt: not a Stable Diffusion checkpoint"):
        load_sd_model(readme)
    with pytest.raises(BadInputError, match="not a diffusers model folder"):
        load_sd_model(tmp_path)


def test_a_lora_or_vae_is_named(tmp_path) -> None:
    from safetensors.torch import save_file

    lora = tmp_path / "style.safetensors"
    save_file(
        {"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)}, lora
    )
    with pytest.raises(BadInputError, match=r"style\.safetensors: .*a LoRA"):
        load_sd_model(lora)
    vae = tmp_path / "vae.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(1), "decoder.up.0.x": torch.zeros(1)}, vae)
    with pytest.raises(BadInputError, match="VAE on its own"):
        load_sd_model(vae)
    assert not is_sd_source(lora) and not is_sd_source(vae)


def test_a_checkpoint_without_its_vae_says_so(pipe, files, tmp_path) -> None:
    path = write_single_file(pipe, tmp_path / "novae.safetensors", drop="first_stage_model.")
    with pytest.raises(BadInputError, match="no VAE"):
        load_sd_model(path, config_dir=files["config"])


def test_nan_weights_are_refused(pipe, files, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(files["safetensors"]))
    key = next(k for k in state if k.endswith("conv_in.weight") or "input_blocks.0.0" in k)
    state[key][0, 0, 0, 0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(state, str(bad))
    with pytest.raises(BadWeightsError, match="NaN"):
        load_sd_model(bad, config_dir=files["config"])


def test_is_sd_source(files, tmp_path) -> None:
    assert is_sd_source(files["safetensors"]) and is_sd_source(files["ckpt"])
    assert is_sd_source(files["folder"])
    assert not is_sd_source(tmp_path / "absent.safetensors")
    assert not is_sd_source(files["config"] / "model_index.json")
    assert not is_sd_source(tmp_path)


def test_random_checkpoint_for_benchmarks_loads(files, tmp_path) -> None:
    """The true-size benchmark file's builder, here over the tiny configs."""
    from safetensors.torch import save_file

    from studio.models.sd.original_layout import random_sd1_checkpoint

    path = tmp_path / "random.safetensors"
    save_file(random_sd1_checkpoint(files["config"], dtype=torch.float16), str(path))
    model = load_sd_model(path, config_dir=files["config"])
    assert model.family is SDFamily.SD1
    assert torch.isfinite(unet_output(model.pipe.unet)).all()
