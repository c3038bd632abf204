"""Outpaint from a prompt through a denoising backend: canvas size, old pixels outside the grown
mask bit-identical, a preview per step, tiles with context, cancel; then a tiny random Stable
Diffusion folder from the command line, with nothing from diffusers on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.jobs import CancelToken, JobRequest, OutpaintParams, PromptedFill
from studio.engine.messages import JobCancelled, JobFinished, JobProgress, TileReady
from studio.engine.runner import JobRunner
from studio.engine.tasks.outpaint_prompted import SEAM_GROW
from studio.errors import BadInputError
from tests.fake_denoiser import FAKE_SD, registered
from tests.no_network import offline_on_one_thread


@pytest.fixture
def runner() -> JobRunner:
    return JobRunner(device=torch.device("cpu"))


@pytest.fixture
def fake():
    with registered(native=32, name=FAKE_SD, flexible=True) as backend:
        yield backend


def outpaint(prompt: str = "a beach", steps: int = 3, **sides: int) -> OutpaintParams:
    fill = PromptedFill(FAKE_SD, prompt, "blurry", steps=steps, guidance=6.0, sampler="euler")
    return OutpaintParams(prompted=fill, seed=9, feather=6, **sides)


def new_area(image: np.ndarray, p: OutpaintParams) -> np.ndarray:
    h, w = image.shape[:2]
    mask = np.ones((h + p.top + p.bottom, w + p.left + p.right), np.float32)
    mask[p.top : p.top + h, p.left : p.left + w] = 0
    return mask


def test_the_canvas_grows_and_old_pixels_outside_the_seam_stay_identical(
    runner, fake, photo
) -> None:
    params = outpaint(right=24, top=8)
    messages = list(runner.run(JobRequest(params, photo)))
    done = messages[-1]
    assert isinstance(done, JobFinished), done
    assert done.image.shape == (96 + 8, 128 + 24, 3)
    old = done.image[8:, :128]
    seam = SEAM_GROW + params.feather + 1  # the grown mask and its feather, plus rounding
    np.testing.assert_array_equal(old[seam:, :-seam], photo[seam:, :-seam])
    alpha = grow_and_feather(new_area(photo, params), SEAM_GROW, params.feather)
    inside = alpha[8:, :128] == 0
    np.testing.assert_array_equal(old[inside], photo[inside])
    assert not (alpha[8:, :128] > 0).all() and (alpha[8:, :128] > 0).any(), "a seam is repainted"
    assert not np.array_equal(done.image[:8], np.zeros_like(done.image[:8]))
    assert done.info["model"] == FAKE_SD and done.info["offset"] == (0, 8)
    request = fake.requests[0]
    assert (request.prompt, request.negative, request.steps) == ("a beach", "blurry", 3)
    assert (request.guidance, request.sampler, request.strength) == (6.0, "euler", 1.0)
    assert request.mask is not None and 0 < request.mask.mean() < 1, "context is kept"


def test_one_preview_and_progress_per_step_of_every_tile_then_each_tile_final(
    runner, fake, photo
) -> None:
    params = outpaint(steps=2, right=40)  # native 32: tiles of 24 px, context 8 px
    messages = list(runner.run(JobRequest(params, photo)))
    done = messages[-1]
    assert isinstance(done, JobFinished), done
    tiles = done.info["tiles"]
    assert tiles > 1 and len(fake.requests) == tiles
    assert len({r.seed for r in fake.requests}) == tiles, "tiles do not repeat one noise"
    shown = [m for m in messages if isinstance(m, TileReady)]
    assert [m.final for m in shown] == ([False, False, True] * tiles)
    steps = [m for m in messages if isinstance(m, JobProgress) and m.stage.startswith("extend")]
    assert len(steps) == 2 * tiles
    assert all(m.out_size == (128 + 40, 96) for m in shown)
    for request in fake.requests:  # each crop about the model's native size, with context
        assert request.init.shape[:2] == (request.height, request.width)
        assert 24 * 24 <= request.width * request.height <= 48 * 48


def test_cancel_between_steps_stops_the_model(runner, fake, photo) -> None:
    token = CancelToken()
    messages = []
    for message in runner.run(JobRequest(outpaint(steps=5, right=16), photo), token):
        messages.append(message)
        if isinstance(message, JobProgress) and message.done == 2:
            token.cancel()
    assert isinstance(messages[-1], JobCancelled)
    assert fake.steps_run == 2


def test_a_prompted_fill_checks_its_options() -> None:
    with pytest.raises(BadInputError, match="steps"):
        PromptedFill("model.safetensors", steps=0)
    with pytest.raises(BadInputError, match="sampler"):
        PromptedFill("model.safetensors", sampler="nope")
    with pytest.raises(BadInputError, match="needs a model"):
        PromptedFill("")


# -- a tiny random Stable Diffusion folder, from the command line ---------------------------


@pytest.fixture
def no_network() -> Iterator[None]:
    with offline_on_one_thread():
        yield


def test_cli_outpaints_with_a_stable_diffusion_folder_and_prints_nothing_of_diffusers(
    tmp_path: Path, photo, no_network, capfd, monkeypatch
) -> None:
    pytest.importorskip("diffusers")
    from studio.cli import main
    from studio.models.sd.model import SDModel
    from tests.tiny_sd import tiny_sd_folder

    # the tiny UNet is trained for nothing: work at 64 px, not SD 1.x's 512, to keep it fast
    monkeypatch.setattr(SDModel, "native_size", property(lambda self: (64, 64)))
    monkeypatch.setenv("STUDIO_PRECISION", "fp32")  # measuring bf16 is the engine tests' job

    folder = tiny_sd_folder(tmp_path / "tiny-sd1")
    small = photo[:48, :64]
    Image.fromarray(small).save(tmp_path / "in.png")
    capfd.readouterr()
    args = ["outpaint", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--right", "16"]
    args += ["--model", str(folder), "--prompt", "a cat", "--steps", "2"]
    assert main([*args, "--quiet"]) == 0
    err = capfd.readouterr().err
    assert err == "", err
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (48, 80, 3)
    np.testing.assert_array_equal(out[:, : 64 - SEAM_GROW - 8 - 1], small[:, : 64 - 13])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prompt", "a cat"], "--prompt needs --model"),
        (["--model", "x.safetensors", "--method", "telea"], "not both"),
        (["--model", "missing-sd.safetensors"], "missing-sd.safetensors"),
    ],
)
def test_cli_prompt_options_get_one_clear_line(tmp_path: Path, photo, capsys, extra, message):
    from studio.cli import main

    Image.fromarray(photo).save(tmp_path / "in.png")
    args = ["outpaint", str(tmp_path / "in.png"), str(tmp_path / "o.png"), "--right", "8"]
    assert main([*args, *extra, "--quiet"]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
