"""The generate task through the real denoising backends (tiny random networks, sockets
blocked): an artist's Stable Diffusion folder from text, a prompted inpaint, LoRA sets in the
model cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.jobs import JobRequest
from studio.engine.messages import JobFailed, JobFinished, JobProgress, ModelLoading, TileReady
from studio.engine.runner import JobRunner
from studio.engine.tasks import denoise
from studio.engine.tasks.generate import GenerateParams, no_pixels
from studio.geometry import Rect
from tests.no_network import offline_on_one_thread

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    with offline_on_one_thread():
        yield


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory, no_network) -> Path:
    """A tiny random SD 1.x pipeline saved as an artist's diffusers folder (a token vocabulary
    that fits its small text encoder)."""
    from tests.tiny_sd import tiny_sd1_pipeline

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    pipe = tiny_sd1_pipeline()
    pipe.tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    folder = tmp_path_factory.mktemp("models") / "tiny-sd1"
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def test_stable_diffusion_folder_text_to_image_then_prompted_inpaint(sd_folder, photo) -> None:
    runner = JobRunner(device=torch.device("cpu"))
    params = GenerateParams(model=str(sd_folder), prompt="a cat", size=32, steps=2, count=2)
    messages = list(runner.run(JobRequest(params, no_pixels())))
    done = messages[-1]
    assert isinstance(done, JobFinished), messages[-1]
    assert done.image.shape == (32, 2 * 32 + 2, 3), "two 32 px cells, worked at 32 px"
    steps = [m for m in messages if isinstance(m, JobProgress) and m.stage == "denoising"]
    assert [(m.done, m.total) for m in steps] == [(1, 2), (2, 2)]
    assert "UNet" in done.info["variant"], "the precision measured fastest here is reported"
    previews = [m for m in messages if isinstance(m, TileReady) and not m.final]
    assert len(previews) == 2
    again = list(runner.run(JobRequest(params, no_pixels())))
    assert not any(isinstance(m, ModelLoading) for m in again), "the loaded model is reused"
    np.testing.assert_array_equal(again[-1].image, done.image)

    mask = np.zeros(photo.shape[:2], np.float32)
    mask[30:50, 40:70] = 1.0
    repaint = GenerateParams(
        model=str(sd_folder), prompt="a hat", size=32, steps=2, count=1, mode="repaint"
    )
    messages = list(runner.run(JobRequest(repaint, photo, mask=mask)))
    done = messages[-1]
    assert isinstance(done, JobFinished), messages[-1]
    alpha = grow_and_feather(mask, denoise.INPAINT_GROW, denoise.INPAINT_FEATHER)
    np.testing.assert_array_equal(done.image[alpha == 0], photo[alpha == 0])
    assert not np.array_equal(done.image[mask > 0], photo[mask > 0])


def test_a_run_that_cannot_fit_the_memory_budget_is_refused_before_a_step(sd_folder) -> None:
    from studio.engine.config import EngineConfig

    runner = JobRunner(EngineConfig(memory_budget=64 << 20), device=torch.device("cpu"))
    params = GenerateParams(model=str(sd_folder), prompt="x", size=512, steps=2, count=4)
    messages = list(runner.run(JobRequest(params, no_pixels())))
    failed = messages[-1]
    assert isinstance(failed, JobFailed) and failed.kind == "bad_input"
    assert "this run needs" in failed.message and "available" in failed.message
    assert not any(isinstance(m, JobProgress | ModelLoading) for m in messages), "before loading"


def test_weights_that_cannot_fit_the_memory_free_are_refused_before_loading(
    sd_folder, monkeypatch
) -> None:
    from studio.engine.tasks import preflight

    monkeypatch.setattr(preflight, "available_memory", lambda: 1 << 20)
    runner = JobRunner(device=torch.device("cpu"))
    params = GenerateParams(model=str(sd_folder), prompt="x", size=64, steps=1, count=1)
    messages = list(runner.run(JobRequest(params, no_pixels())))
    failed = messages[-1]
    assert isinstance(failed, JobFailed) and failed.kind == "bad_input"
    assert "of weights" in failed.message and "1 MiB available" in failed.message
    assert not any(isinstance(m, ModelLoading) for m in messages), "nothing was read"


def test_a_run_that_fits_the_memory_free_is_not_refused(sd_folder) -> None:
    """The limit is the memory free now (capped by a configured budget), not the engine's
    upscale tile budget (an eighth of RAM, at most 2 GiB), so a 1 GiB budget runs this."""
    from studio.engine.config import EngineConfig

    runner = JobRunner(EngineConfig(memory_budget=1 << 30), device=torch.device("cpu"))
    params = GenerateParams(model=str(sd_folder), prompt="x", size=64, steps=1, count=1)
    done = list(runner.run(JobRequest(params, no_pixels())))[-1]
    assert isinstance(done, JobFinished), done


def test_the_precision_is_measured_once_and_remembered(sd_folder, tmp_path) -> None:
    from studio.engine.config import EngineConfig

    config = EngineConfig(tuning_file=tmp_path / "tuning.json")
    params = GenerateParams(model=str(sd_folder), prompt="x", size=32, steps=1, count=1)

    def measuring(runner: JobRunner) -> list[str]:
        messages = list(runner.run(JobRequest(params, no_pixels())))
        assert isinstance(messages[-1], JobFinished), messages[-1]
        return [m.stage for m in messages if isinstance(m, JobProgress) and "measuring" in m.stage]

    first = measuring(JobRunner(config, device=torch.device("cpu")))
    assert [("UNet" in s, "VAE" in s) for s in first] in ([], [(True, False), (False, True)])
    assert measuring(JobRunner(config, device=torch.device("cpu"))) == [], "read from the file"


def test_a_lora_set_is_part_of_the_cache_key(sd_folder, tmp_path, monkeypatch) -> None:
    from studio.models.sd import lora

    applied = []
    monkeypatch.setattr(lora, "apply_loras", lambda model, loras: applied.append(list(loras)))
    style = tmp_path / "style.safetensors"
    style.write_bytes(b"read by apply_loras only")
    runner = JobRunner(device=torch.device("cpu"))

    def loads(*loras: tuple[str, float]) -> int:
        params = GenerateParams(
            model=str(sd_folder), prompt="x", size=32, steps=1, count=1, loras=loras
        )
        messages = list(runner.run(JobRequest(params, no_pixels())))
        assert isinstance(messages[-1], JobFinished), messages[-1]
        return sum(isinstance(m, ModelLoading) for m in messages)

    assert loads((str(style), 0.5)) == 1
    assert applied == [[(style.resolve(), 0.5)]]
    assert loads((str(style), 0.5)) == 0, "the same set: the cached model"
    assert loads((str(style), 0.8)) == 1, "another weight: fused anew"
    assert loads() == 1 and len(applied) == 2, "no LoRA: the plain model"


@pytest.fixture
def tiny_text_model() -> Iterator[str]:
    """Studio's text-to-image backend with a tiny random network and a fake prompt encoder,
    registered as a model of the generate task."""
    from studio.engine.tasks import denoisers
    from studio.models.archs.text_unet import DEFAULT_SCHEDULE, build_text_unet, tiny_config
    from studio.models.text_diffusion import TextDiffusion
    from tests.models.test_text_diffusion import FakeEncoder

    torch.manual_seed(0)
    network = build_text_unet(tiny_config())
    with torch.no_grad():
        for p in network.parameters():
            p.add_(0.05 * torch.randn_like(p))
    backend = TextDiffusion(network, DEFAULT_SCHEDULE, encoder=FakeEncoder())
    denoisers.register_backend("tiny-text2img", lambda device, dtype: backend, False)
    yield "tiny-text2img"
    denoisers.unregister_backend("tiny-text2img")


def test_text_diffusion_grid_enlarged_img2img_and_prompted_inpaint(tiny_text_model, photo):
    runner = JobRunner(device=torch.device("cpu"))

    def result(params: GenerateParams, image=None, **request) -> JobFinished:
        image = no_pixels() if image is None else image
        done = list(runner.run(JobRequest(params, image, **request)))[-1]
        assert isinstance(done, JobFinished), done
        return done

    grid = GenerateParams(model=tiny_text_model, prompt="a red apple", steps=3, count=2, seed=4)
    first = result(grid)
    assert first.image.shape == (64, 2 * 64 + 2, 3)
    np.testing.assert_array_equal(result(grid).image, first.image)
    alone = result(
        GenerateParams(model=tiny_text_model, prompt="a red apple", steps=3, seed=5, count=1)
    )
    np.testing.assert_array_equal(first.image[:, 66:], alone.image)

    big = GenerateParams(
        model=tiny_text_model, prompt="x", steps=2, count=1, size=128, upscale_model="lanczos"
    )
    assert result(big).image.shape == (128, 128, 3)

    roi = (10, 20, 50, 30)
    variations = GenerateParams(
        model=tiny_text_model, prompt="x", steps=4, count=1, mode="variations", strength=0.5
    )
    assert result(variations, photo, roi=Rect(*roi)).image.shape == (30, 50, 3)

    mask = np.zeros(photo.shape[:2], np.float32)
    mask[30:50, 40:70] = 1.0
    repaint = GenerateParams(model=tiny_text_model, prompt="x", steps=2, count=1, mode="repaint")
    done = result(repaint, photo, mask=mask)
    alpha = grow_and_feather(mask, denoise.INPAINT_GROW, denoise.INPAINT_FEATHER)
    np.testing.assert_array_equal(done.image[alpha == 0], photo[alpha == 0])
