"""``studio generate OUT --prompt ...``: arguments, one-line errors, and whole runs through a fake
denoising backend (text-to-image, enlarging, img2img and a prompted inpaint from files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.tasks import denoise
from studio.engine.tasks.generate import parse_lora
from tests.fake_denoiser import FAKE_MODEL, registered


@pytest.fixture
def fake():
    with registered() as backend:
        yield backend


@pytest.fixture
def photo_png(tmp_path: Path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


def generate(out: Path, *args: str) -> int:
    return main(["generate", str(out), "--quiet", *args])


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_prompt_writes_a_seeded_grid(tmp_path: Path, fake) -> None:
    args = ["--model", FAKE_MODEL, "--prompt", "a red apple", "--seed", "3", "--count", "2"]
    assert generate(tmp_path / "a.png", *args, "--steps", "3", "--sampler", "euler") == 0
    assert generate(tmp_path / "b.png", *args, "--steps", "3", "--sampler", "euler") == 0
    a = np.asarray(Image.open(tmp_path / "a.png"))
    assert a.shape == (16, 2 * 16 + 2, 3)
    np.testing.assert_array_equal(a, np.asarray(Image.open(tmp_path / "b.png")))
    request = fake.requests[-1]
    assert (request.prompt, request.seed, request.count, request.steps) == ("a red apple", 3, 2, 3)
    assert request.sampler == "euler" and request.negative == ""


def test_every_option_reaches_the_model(tmp_path: Path, fake) -> None:
    args = ["--model", FAKE_MODEL, "--prompt", "a cat", "--negative", "blurry"]
    args += ["--guidance", "7.5", "--steps", "2", "--seed", "11"]
    assert generate(tmp_path / "one.png", *args) == 0
    request = fake.requests[-1]
    assert (request.negative, request.guidance, request.seed) == ("blurry", 7.5, 11)
    assert request.count == 1, "one image by default with a prompt"


def test_size_256_enlarges_the_native_images(tmp_path: Path, fake) -> None:
    args = ["--model", FAKE_MODEL, "--prompt", "x", "--steps", "1", "--size", "256"]
    assert generate(tmp_path / "big.png", *args, "--upscale", "lanczos") == 0
    assert Image.open(tmp_path / "big.png").size == (256, 256)


def test_init_and_mask_repaint_only_the_masked_part(tmp_path: Path, fake, photo_png, photo):
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[20:40, 30:60] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    args = ["--model", FAKE_MODEL, "--prompt", "a hat", "--steps", "2"]
    assert generate(out, *args, "--init", str(photo_png), "--mask", str(tmp_path / "mask.png")) == 0
    result = np.asarray(Image.open(out))
    assert result.shape == photo.shape
    alpha = grow_and_feather(mask / 255.0, denoise.INPAINT_GROW, denoise.INPAINT_FEATHER)
    np.testing.assert_array_equal(result[alpha == 0], photo[alpha == 0])
    assert fake.requests[-1].strength == 1.0, "a prompted inpaint repaints fully by default"


def test_init_strength_0_writes_the_input_back(tmp_path: Path, fake, photo_png, photo) -> None:
    out = tmp_path / "same.png"
    args = ["--model", FAKE_MODEL, "--prompt", "x", "--init", str(photo_png), "--strength", "0"]
    assert generate(out, *args) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), photo)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "x", "--sampler", "heun2"], "unknown sampler 'heun2' (use dpm++"),
        (["--prompt", "x", "--model", "missing/model.safetensors"], "no such model file"),
        (["--prompt", "x", "--mask", "m.png"], "--mask needs --init IMAGE"),
        (["--prompt", "x", "--steps", "0"], "steps must be between 1 and 200"),
        (["--prompt", "x", "--lora", "none.safetensors:0.5"], "LoRA file not found"),
    ],
)
def test_bad_arguments_are_one_clear_line(tmp_path, capsys, fake, args, message) -> None:
    assert generate(tmp_path / "x.png", "--model", FAKE_MODEL, *args) == 1
    assert message in error_line(capsys)
    assert not (tmp_path / "x.png").exists()


def test_a_lora_without_stable_diffusion_is_refused(tmp_path: Path, capsys, fake) -> None:
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"not read")
    args = ["--model", FAKE_MODEL, "--prompt", "x", "--lora", f"{lora}:0.7"]
    assert generate(tmp_path / "x.png", *args) == 1
    assert "--lora works with Stable Diffusion models only" in error_line(capsys)
    assert fake.requests == []


def test_a_prompt_for_a_noise_model_is_refused(tmp_path: Path, capsys) -> None:
    args = ["--model", "studio-emoji-gan", "--prompt", "a cat"]
    assert generate(tmp_path / "x.png", *args) == 1
    assert "reads no prompt" in error_line(capsys)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("style.safetensors", ("style.safetensors", 1.0)),
        ("style.safetensors:0.6", ("style.safetensors", 0.6)),
        ("/a/b:c/x.safetensors:-1", ("/a/b:c/x.safetensors", -1.0)),
        ("C:\\loras\\x.safetensors", ("C:\\loras\\x.safetensors", 1.0)),
    ],
)
def test_lora_arguments_take_an_optional_weight(text, expected) -> None:
    assert parse_lora(text) == expected
