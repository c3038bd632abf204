"""Studio's text-to-image backend with a tiny random network and a fake prompt encoder: seeded
determinism, one preview per step in order, img2img and masks, guidance, save/load."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from studio.errors import BadInputError, BadWeightsError
from studio.models.archs.text_unet import (
    DEFAULT_SCHEDULE,
    TOKENS,
    build_text_unet,
    load_text_unet,
    save_text_unet,
    tiny_config,
)
from studio.models.diffusion_api import DenoiseRequest, DenoiseStep
from studio.models.text_diffusion import TextDiffusion
from studio.models.text_encoder import EMBED_DIM, TextEncoding


class FakeEncoder:
    """Deterministic per-prompt vectors (no MiniLM: tests stay fast and offline)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> TextEncoding:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            out.append(
                torch.randn(TOKENS, EMBED_DIM, generator=torch.Generator().manual_seed(seed))
            )
        mask = torch.zeros(len(texts), TOKENS, dtype=torch.bool)
        mask[:, :4] = True
        tokens = torch.stack(out) * mask[..., None]
        return TextEncoding(tokens, mask, torch.nn.functional.normalize(tokens.sum(1), dim=1))


def run(backend: TextDiffusion, **kw) -> tuple[list[DenoiseStep], np.ndarray]:
    gen = backend.denoise(DenoiseRequest(**kw))
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return steps, stop.value


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny calls gain nothing from a second thread, and lose seconds when the CPU is shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend() -> TextDiffusion:
    torch.manual_seed(0)
    model = build_text_unet(tiny_config())
    # random init leaves the output convolution at zero: perturb it so images depend on input
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return TextDiffusion(model, DEFAULT_SCHEDULE, encoder=FakeEncoder())


def test_same_seed_same_images_whatever_the_count(backend: TextDiffusion) -> None:
    _, a = run(backend, prompt="a red apple", seed=7, steps=3, count=2)
    _, b = run(backend, prompt="a red apple", seed=7, steps=3, count=2)
    _, c = run(backend, prompt="a red apple", seed=8, steps=3, count=1)
    assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    # image i comes from seed + i, so seed 8 alone is image 1 of the run from seed 7
    np.testing.assert_allclose(a[1].astype(int), c[0].astype(int), atol=1)
    assert np.abs(a[0].astype(int) - a[1].astype(int)).mean() > 1.0, "seeds must differ"


def test_stochastic_sampler_is_seeded(backend: TextDiffusion) -> None:
    _, a = run(backend, prompt="cat", seed=3, steps=3, sampler="euler-a")
    _, b = run(backend, prompt="cat", seed=3, steps=3, sampler="euler-a")
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sampler", ["dpm++", "euler", "ddim"])
def test_one_preview_per_step_in_order(backend: TextDiffusion, sampler: str) -> None:
    steps, images = run(backend, prompt="sun", steps=4, sampler=sampler, count=2)
    assert [s.index for s in steps] == [1, 2, 3, 4]
    assert all(s.total == 4 for s in steps)
    assert all(s.preview.shape == (2, 64, 64, 3) and s.preview.dtype == np.uint8 for s in steps)
    assert images.shape == (2, 64, 64, 3)


def test_guidance_off_runs_one_half_and_changes_the_result(backend: TextDiffusion) -> None:
    calls = []
    original = backend.model.forward

    def spy(x, t, tokens, encoder_attention_mask=None):
        calls.append(x.shape[0])
        return original(x, t, tokens, encoder_attention_mask=encoder_attention_mask)

    backend.model.forward = spy
    try:
        _, off = run(backend, prompt="moon", steps=2, count=3, guidance=1.0)
        n_off = list(calls)
        calls.clear()
        _, on = run(backend, prompt="moon", steps=2, count=3, guidance=7.0)
    finally:
        del backend.model.forward
    assert n_off == [3, 3] and calls == [6, 6], "guidance batches cond and uncond in one call"
    assert off.shape == on.shape == (3, 64, 64, 3)
    assert not np.array_equal(off, on)


def test_negative_prompt_replaces_the_empty_one(backend: TextDiffusion) -> None:
    _, plain = run(backend, prompt="tree", steps=2, guidance=5.0)
    _, negative = run(backend, prompt="tree", negative="blurry", steps=2, guidance=5.0)
    assert not np.array_equal(plain, negative)


def test_strength_zero_returns_the_input(backend: TextDiffusion) -> None:
    init = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    steps, out = run(backend, prompt="x", init=init, strength=0.0, count=2)
    assert steps == []
    assert out.shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(out[0], init)
    np.testing.assert_array_equal(out[1], init)


def test_img2img_runs_the_strength_share_of_the_steps(backend: TextDiffusion) -> None:
    init = np.full((128, 96, 3), 200, np.uint8)  # resized to the working size
    steps, out = run(backend, prompt="x", init=init, strength=0.5, steps=10)
    assert [s.index for s in steps] == [1, 2, 3, 4, 5]
    assert out.shape == (1, 64, 64, 3)


def test_mask_keeps_the_known_region_exactly(backend: TextDiffusion) -> None:
    init = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1.0
    _, out = run(backend, prompt="x", init=init, mask=mask, strength=1.0, steps=3)
    np.testing.assert_array_equal(out[0][mask == 0], init[mask == 0])
    assert not np.array_equal(out[0][mask == 1], init[mask == 1])


@pytest.mark.parametrize(
    "kw",
    [
        {"sampler": "nope"},
        {"sampler": "dpm++-karras"},  # repeated timesteps under zero terminal SNR
        {"steps": 0},
        {"count": 0},
        {"width": 60},
        {"strength": 1.5},
    ],
)
def test_bad_requests_are_one_clear_error(backend: TextDiffusion, kw: dict) -> None:
    with pytest.raises(BadInputError):
        run(backend, prompt="x", **kw)


def test_save_load_round_trip(backend: TextDiffusion, tmp_path) -> None:
    path = tmp_path / "t2i.safetensors"
    save_text_unet(backend.model, path, DEFAULT_SCHEDULE, {"steps": 5}, dtype=torch.float32)
    model, schedule, meta = load_text_unet(path)
    assert schedule == DEFAULT_SCHEDULE and meta["steps"] == "5"
    assert model.config == backend.model.config
    loaded = TextDiffusion.load(path, encoder=FakeEncoder())
    _, a = run(backend, prompt="owl", seed=2, steps=2)
    _, b = run(loaded, prompt="owl", seed=2, steps=2)
    np.testing.assert_array_equal(a, b)


def test_a_file_without_config_is_refused(tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(BadInputError, match="not a Studio text-to-image file"):
        TextDiffusion.load(path, encoder=FakeEncoder())


def test_a_registry_checksum_refuses_a_changed_file(backend: TextDiffusion, tmp_path) -> None:
    from studio.models.loading import sha256_of

    path = tmp_path / "t2i.safetensors"
    save_text_unet(backend.model, path, DEFAULT_SCHEDULE)
    good = sha256_of(path)
    TextDiffusion.load(path, encoder=FakeEncoder(), sha256=good)
    data = bytearray(path.read_bytes())
    data[-2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BadWeightsError, match="checksum mismatch"):
        TextDiffusion.load(path, encoder=FakeEncoder(), sha256=good)


class OracleV(torch.nn.Module):
    """The exact v-prediction for data that is always the image ``target``: every sampler must
    land on ``target``, and every preview (the x0 estimate) must show it from the first step."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        from diffusers import DDPMScheduler

        self.target = target
        self.alphas = DDPMScheduler.from_config(DEFAULT_SCHEDULE).alphas_cumprod

    def forward(self, sample, timestep, tokens, encoder_attention_mask=None):
        a = self.alphas[timestep.long()].float().view(-1, 1, 1, 1)
        eps = (sample - a.sqrt() * self.target) / (1 - a).sqrt()
        return a.sqrt() * eps - (1 - a).sqrt() * self.target


# "ddim" ends at alpha_cumprod[0] < 1 (set_alpha_to_one=False in the samplers table), which
# leaves sqrt(1 - alpha_cumprod[0]) of noise: up to 4 levels. "dpm++-karras" is left out: its
# Karras sigmas collapse onto duplicate timesteps under a zero-terminal-SNR schedule.
@pytest.mark.parametrize(
    ("sampler", "atol"),
    [("dpm++", 1), ("euler", 1), ("euler-a", 1), ("ddim", 4), ("unipc", 1), ("lcm", 1)],
)
def test_samplers_and_previews_agree_with_the_training_schedule(sampler: str, atol: int) -> None:
    colour = np.array([230, 40, 90], np.uint8)
    want = np.broadcast_to(colour, (64, 64, 3)).astype(int)
    target = torch.from_numpy(colour / 127.5 - 1.0).float().view(1, 3, 1, 1).expand(1, 3, 64, 64)
    backend = TextDiffusion(OracleV(target), DEFAULT_SCHEDULE, encoder=FakeEncoder())
    steps, images = run(backend, prompt="x", steps=8, sampler=sampler, guidance=3.0)
    np.testing.assert_allclose(images[0].astype(int), want, atol=atol)
    for step in steps:  # the x0 estimate is exact from the first step on (uint8 rounding)
        np.testing.assert_allclose(step.preview[0].astype(int), want, atol=1)
