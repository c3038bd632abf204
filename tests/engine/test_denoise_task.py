"""The generate task with a denoising model (a fake backend): previews per step, cancel between
steps, seeded grids, img2img, prompted inpaint, enlarging, the model cache and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.document.document import Document
from studio.document.landing import Landing, land_generated
from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.jobs import CancelToken, JobRequest
from studio.engine.messages import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    ModelLoading,
    TileReady,
)
from studio.engine.runner import JobRunner
from studio.engine.tasks import denoise
from studio.engine.tasks.generate import GenerateParams, no_pixels
from studio.errors import BadInputError
from studio.geometry import Rect
from tests.fake_denoiser import FAKE_MODEL, FAKE_SD, registered


@pytest.fixture
def runner() -> JobRunner:
    return JobRunner(device=torch.device("cpu"))


@pytest.fixture
def fake():
    with registered() as backend:
        yield backend


def kinds(messages) -> list[str]:
    return [type(m).__name__ for m in messages]


def prompt(**fields) -> GenerateParams:
    return GenerateParams(**{"model": FAKE_MODEL, "prompt": "a red apple", "count": 1} | fields)


def run(runner: JobRunner, params: GenerateParams, image=None, **request) -> list:
    image = no_pixels() if image is None else image
    return list(runner.run(JobRequest(params, image, **request)))


def test_one_preview_and_progress_per_step_in_order_then_the_final_images(runner, fake) -> None:
    messages = run(runner, prompt(steps=4, count=3, seed=5))
    assert kinds(messages) == (
        ["JobStarted", "ModelLoading"]
        + ["TileReady", "JobProgress"] * 4
        + ["TileReady"] * 3
        + ["JobFinished"]
    )
    progress = [m for m in messages if isinstance(m, JobProgress)]
    assert [(p.done, p.total) for p in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    tiles = [m for m in messages if isinstance(m, TileReady)]
    previews, finals = tiles[:4], tiles[4:]
    assert not any(t.final for t in previews) and all(t.final for t in finals)
    done = messages[-1]
    assert isinstance(done, JobFinished)
    # 3 cells of 16 px on a 2x2 grid with 2 px gaps; previews cover the whole grid
    assert done.image.shape == (34, 34, 3) and done.info["grid"] == (2, 2)
    assert all(t.rect == Rect(0, 0, 34, 34) and t.out_size == (34, 34) for t in previews)
    assert [c["seed"] for c in done.info["cells"]] == [5, 6, 7]
    assert done.info["prompt"] == "a red apple" and done.info["steps"] == 4
    request = fake.requests[-1]
    assert (request.prompt, request.seed, request.count, request.steps) == ("a red apple", 5, 3, 4)
    assert (request.width, request.height) == (0, 0), "a fixed-size model works at its own size"


def test_the_same_seed_gives_the_same_images_and_cell_i_is_seed_plus_i(runner, fake) -> None:
    first = run(runner, prompt(seed=3, count=2))[-1]
    again = run(runner, prompt(seed=3, count=2))[-1]
    np.testing.assert_array_equal(first.image, again.image)
    alone = run(runner, prompt(seed=4))[-1]
    x, y, w, h = first.info["cells"][1]["rect"]
    np.testing.assert_array_equal(first.image[y : y + h, x : x + w], alone.image)
    other = run(runner, prompt(seed=9))[-1]
    assert not np.array_equal(other.image, alone.image)


def test_cancel_after_step_two_stops_the_model_there(runner, fake) -> None:
    token = CancelToken()
    messages = []
    for m in runner.run(JobRequest(prompt(steps=10), no_pixels()), token):
        messages.append(m)
        if isinstance(m, JobProgress) and m.done == 2:
            token.cancel()
    assert isinstance(messages[-1], JobCancelled)
    assert fake.steps_run == 2, "no step runs after Cancel"
    assert not any(isinstance(m, TileReady) and m.final for m in messages)


def test_a_second_job_reuses_the_loaded_model(runner, fake) -> None:
    run(runner, prompt())
    again = run(runner, prompt(seed=1))
    assert not any(isinstance(m, ModelLoading) for m in again)
    assert isinstance(again[-1], JobFinished)


def test_size_256_enlarges_each_image_with_the_upscale_task(runner, fake) -> None:
    messages = run(runner, prompt(count=2, size=256, upscale_model="lanczos"))
    done = messages[-1]
    assert isinstance(done, JobFinished), messages[-1]
    assert done.image.shape == (256, 2 * 256 + 2, 3) and done.info["cell_size"] == 256
    finals = [m for m in messages if isinstance(m, TileReady) and m.final]
    assert [m.pixels.shape for m in finals] == [(256, 256, 3)] * 2
    assert fake.requests[-1].width == 0, "the model itself still works at 16 px"


def test_a_flexible_model_works_at_the_size_asked(runner) -> None:
    with registered(name=FAKE_SD, flexible=True) as sd:
        done = run(runner, prompt(model=FAKE_SD, size=40))[-1]
    assert done.image.shape == (40, 40, 3)
    assert (sd.requests[-1].width, sd.requests[-1].height) == (40, 40)


def test_img2img_strength_0_returns_the_input_region_without_running(runner, fake, photo) -> None:
    roi = Rect(10, 20, 50, 30)
    params = prompt(mode="variations", strength=0.0)
    messages = run(runner, params, photo, roi=roi)
    done = messages[-1]
    assert isinstance(done, JobFinished)
    np.testing.assert_array_equal(done.image, photo[roi.slices])
    assert done.info["lands"] == "region" and fake.steps_run == 0


def test_img2img_changes_the_region_and_lands_there(runner, fake, photo) -> None:
    roi = Rect(10, 20, 50, 30)
    messages = run(runner, prompt(mode="variations", strength=0.6), photo, roi=roi)
    done = messages[-1]
    assert isinstance(done, JobFinished) and done.image.shape == (30, 50, 3)
    request = fake.requests[-1]
    assert request.init.shape == (16, 16, 3) and request.strength == 0.6
    assert not np.array_equal(done.image, photo[roi.slices])
    doc = Document.from_image(photo)
    land_generated(doc, Landing(done.image, photo, "Generate", roi, done.info))
    out = doc.composite()[:, :, :3]
    np.testing.assert_array_equal(out[roi.slices], done.image)
    outside = np.ones(photo.shape[:2], bool)
    outside[roi.slices] = False
    np.testing.assert_array_equal(out[outside], photo[outside])


def test_prompted_inpaint_leaves_pixels_outside_the_grown_mask_bit_identical(
    runner, fake, photo
) -> None:
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[30:50, 40:70] = 1.0
    messages = run(runner, prompt(mode="repaint", strength=1.0), photo, mask=mask)
    done = messages[-1]
    assert isinstance(done, JobFinished), messages[-1]
    alpha = grow_and_feather(mask, denoise.INPAINT_GROW, denoise.INPAINT_FEATHER)
    outside = alpha == 0
    np.testing.assert_array_equal(done.image[outside], photo[outside])
    inside = mask > 0
    assert np.abs(done.image[inside].astype(int) - photo[inside]).mean() > 20, "not repainted"
    request = fake.requests[-1]
    assert request.mask is not None and request.init.shape == (16, 16, 3)
    assert 0 < request.mask.mean() < 1, "the model sees context around the hole"
    steps = [m for m in messages if isinstance(m, TileReady) and not m.final]
    assert len(steps) == request.steps


def test_a_noise_model_refuses_a_prompt_and_a_lora_needs_stable_diffusion(runner, fake) -> None:
    failed = run(runner, GenerateParams(model="studio-emoji-gan", prompt="a cat"))[-1]
    assert isinstance(failed, JobFailed) and failed.kind == "bad_input"
    assert "reads no prompt" in failed.message
    lora = prompt(loras=(("style.safetensors", 0.8),))
    failed = run(runner, lora)[-1]
    assert isinstance(failed, JobFailed) and "Stable Diffusion models only" in failed.message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "interpolate", "count": 2}, "needs a GAN or VAE"),
        ({"mode": "variations", "count": 2}, "one image at a time"),
        ({"mode": "variations", "strength": 1.5}, "between 0 and 1"),
        ({"mode": "repaint"}, "needs a mask"),
    ],
)
def test_modes_a_denoising_model_cannot_do_are_refused(runner, fake, photo, fields, message):
    failed = run(runner, prompt(**fields), photo)[-1]
    assert isinstance(failed, JobFailed) and failed.kind == "bad_input"
    assert message in failed.message


def test_params_check_sampler_steps_and_the_default_model() -> None:
    with pytest.raises(BadInputError, match="unknown sampler 'heun2'"):
        GenerateParams(prompt="x", sampler="heun2")
    with pytest.raises(BadInputError, match="steps must be between 1 and 200"):
        GenerateParams(prompt="x", steps=0)
    assert GenerateParams(prompt="a cat").model == "studio-text2img"
    assert GenerateParams().model == "studio-emoji-gan"


def test_a_generated_grid_lands_as_a_new_picture_layer(runner, fake, photo) -> None:
    done = run(runner, prompt(count=2, seed=7))[-1]
    doc = Document.from_image(photo)
    info = done.info | {"picked": 1}
    land_generated(doc, Landing(done.image, no_pixels(), "Generate", None, info))
    assert len(doc.layers) == 2 and doc.layers[-1].name == "Generated (seed 8)"
