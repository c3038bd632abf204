"""The generate task driven through the plain-Python runner: streaming, cancel, modes, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

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
from studio.engine.tasks.generate import GenerateParams
from studio.errors import BadInputError
from studio.models import generate as gen
from studio.models.archs.gan import Generator
from studio.models.archs.vae import ConvVAE

BLANK = np.zeros((8, 8, 3), np.uint8)


def kinds(messages) -> list[str]:
    return [type(m).__name__ for m in messages]


@pytest.fixture
def runner() -> JobRunner:
    return JobRunner(device=torch.device("cpu"))


def _save(module: torch.nn.Module, path: Path) -> str:
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return str(path)


@pytest.fixture
def gan_file(tmp_path) -> str:
    torch.manual_seed(1)
    g = Generator(8, (16, 8, 8, 8, 8))
    with torch.no_grad():
        g(torch.randn(64, 8))  # batch-norm statistics that fit the random weights
    return _save(g.eval(), tmp_path / "gan.safetensors")


@pytest.fixture
def vae_file(tmp_path) -> str:
    torch.manual_seed(2)
    return _save(ConvVAE(8, (4, 8, 8, 8), (16, 8, 8, 8, 8)), tmp_path / "vae.safetensors")


def test_samples_stream_one_cell_each_in_grid_coordinates(runner, gan_file) -> None:
    params = GenerateParams(model=gan_file, seed=10, count=5)
    messages = list(runner.run(JobRequest(params, BLANK)))
    assert kinds(messages) == (
        ["JobStarted", "ModelLoading", "JobProgress"]
        + ["TileReady", "JobProgress"] * 5
        + ["JobFinished"]
    )
    done = messages[-1]
    assert isinstance(done, JobFinished)
    # 5 cells -> 2 rows x 3 columns of 64 px with 2 px gaps
    assert done.image.shape == (2 * 64 + 2, 3 * 64 + 2 * 2, 3)
    assert [c["seed"] for c in done.info["cells"]] == [10, 11, 12, 13, 14]
    model = gen.load_generator(gan_file).module
    tiles = [m for m in messages if isinstance(m, TileReady)]
    for i, tile in enumerate(tiles):
        assert tile.out_size == (196, 130) and tile.final
        assert (tile.rect.x, tile.rect.y) == gen.cell_origin(i, 3, 64)
        r = tile.rect
        assert np.array_equal(tile.pixels, done.image[r.y : r.bottom, r.x : r.right])
        assert np.array_equal(tile.pixels, gen.sample(model, [10 + i])[0]), "seed != its image"
    progress = [m.done for m in messages if isinstance(m, JobProgress)]
    assert progress == [0, 1, 2, 3, 4, 5]


def test_a_second_job_reuses_the_cached_model(runner, gan_file) -> None:
    list(runner.run(JobRequest(GenerateParams(model=gan_file, count=1), BLANK)))
    again = list(runner.run(JobRequest(GenerateParams(model=gan_file, count=1), BLANK)))
    assert not any(isinstance(m, ModelLoading) for m in again)
    assert isinstance(again[-1], JobFinished)


def test_cancel_mid_batch_stops_with_fewer_images(runner, gan_file) -> None:
    token = CancelToken()
    messages = []
    request = JobRequest(GenerateParams(model=gan_file, count=8), BLANK)
    for m in runner.run(request, token):
        messages.append(m)
        if isinstance(m, TileReady) and sum(isinstance(x, TileReady) for x in messages) == 2:
            token.cancel()
    assert isinstance(messages[-1], JobCancelled)
    assert sum(isinstance(m, TileReady) for m in messages) == 2
    assert not any(isinstance(m, JobFinished) for m in messages)


def test_interpolation_strip_ends_on_the_two_seeds(runner, gan_file) -> None:
    strip = list(
        runner.run(JobRequest(GenerateParams(gan_file, 3, 6, 0.9, "interpolate", 8), BLANK))
    )
    done = strip[-1]
    assert isinstance(done, JobFinished) and done.info["grid"] == (1, 6)
    cells = [m.pixels for m in strip if isinstance(m, TileReady)]
    pair = list(runner.run(JobRequest(GenerateParams(gan_file, 3, 6, 0.9), BLANK)))
    samples = {c["seed"]: c["rect"] for c in pair[-1].info["cells"]}
    x, y, w, h = samples[3]
    assert np.array_equal(cells[0], pair[-1].image[y : y + h, x : x + w])
    x, y, w, h = samples[8]
    assert np.array_equal(cells[-1], pair[-1].image[y : y + h, x : x + w])
    assert [c["seed"] for c in done.info["cells"]] == [3, None, None, None, None, 8]


def test_variations_need_a_vae_and_use_the_selection(runner, gan_file, vae_file, photo) -> None:
    failed = list(runner.run(JobRequest(GenerateParams(gan_file, mode="variations"), photo)))
    assert isinstance(failed[-1], JobFailed) and failed[-1].kind == "bad_input"
    params = GenerateParams(vae_file, seed=1, count=4, mode="variations", strength=0.0)
    done = list(runner.run(JobRequest(params, photo)))[-1]
    assert isinstance(done, JobFinished) and done.info["strength"] == 0.0
    vae = gen.load_generator(vae_file).module
    expected = gen.variations(vae, photo, 0.0, 1, 1)[0]
    assert np.array_equal(done.image[:64, :64], expected)
    assert np.array_equal(done.image[:64, 66:130], expected), "strength 0: every cell the same"


def test_upscaled_cells_use_the_upscale_machinery(runner, gan_file) -> None:
    params = GenerateParams(gan_file, seed=4, count=2, upscale_model="lanczos", out_size=128)
    messages = list(runner.run(JobRequest(params, BLANK)))
    done = messages[-1]
    assert isinstance(done, JobFinished), messages[-1]
    assert done.image.shape == (128, 2 * 128 + 2, 3) and done.info["cell_size"] == 128
    assert all(m.rect.w == 128 for m in messages if isinstance(m, TileReady))
    small = gen.sample(gen.load_generator(gan_file).module, [4])[0].astype(np.float32)
    big = done.image[:128, :128].astype(np.float32)
    shrunk = big.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(shrunk - small).mean() < 4.0, "the upscaled cell must still be the seed's image"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"count": 0}, "count"),
        ({"mode": "dream"}, "mode"),
        ({"mode": "interpolate", "count": 1}, "count"),
        ({"truncation": 0.0}, "truncation"),
    ],
)
def test_bad_parameters_are_refused_with_a_clear_message(params, needle) -> None:
    with pytest.raises(BadInputError, match=needle):
        GenerateParams(**params)


def test_unknown_model_is_a_missing_model(runner) -> None:
    messages = list(runner.run(JobRequest(GenerateParams(model="no-such-model"), BLANK)))
    assert isinstance(messages[-1], JobFailed) and messages[-1].kind == "missing_model"
