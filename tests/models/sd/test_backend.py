"""The Stable Diffusion denoise backend on tiny random SD 1.x and SDXL pipelines built in code
(a small UNet, VAE and CLIP text model, a tokenizer over a 54-token vocabulary), with every
socket connection failing in this module."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.errors import BadInputError
from studio.models.diffusion_api import DenoiseRequest, DenoiseStep
from studio.models.sd.backend import SDBackend
from studio.models.sd.estimate import check_fits, estimate_run
from studio.models.sd.model import FewStep, SDFamily, SDModel
from studio.models.sd.preview import latent_preview
from studio.models.sd.schedule import build_scheduler, choose_settings
from tests.no_network import NetworkUsedError, offline_on_one_thread

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    """Every connection fails for the whole module, on one thread."""
    with offline_on_one_thread():
        yield


VOCAB = {"<|startoftext|>": 0, "<|endoftext|>": 1}
for _c in "abcdefghijklmnopqrstuvwxyz":
    VOCAB[_c] = len(VOCAB)
for _c in "abcdefghijklmnopqrstuvwxyz":
    VOCAB[_c + "</w>"] = len(VOCAB)
TOKENS = 16


def _tokenizer():
    return transformers.CLIPTokenizer(vocab=VOCAB, merges=[], model_max_length=TOKENS)


def _text_encoder(projection: int | None = None):
    config = transformers.CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(VOCAB),
        max_position_embeddings=TOKENS,
        **({"projection_dim": projection} if projection else {}),
    )
    cls = transformers.CLIPTextModelWithProjection if projection else transformers.CLIPTextModel
    return cls(config).eval()


def _vae():
    # four blocks: the released VAEs' factor of 8 between pixels and latents
    return diffusers.AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=64,
    ).eval()


def _scheduler():
    return diffusers.EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )


def _unet(in_channels: int = 4, **xl):
    return diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64 if xl else 32,
        norm_num_groups=4,
        attention_head_dim=4,
        **xl,
    ).eval()


def sd1_model(in_channels: int = 4, **changes) -> SDModel:
    torch.manual_seed(0)
    pipe = diffusers.StableDiffusionPipeline(
        vae=_vae(),
        unet=_unet(in_channels),
        text_encoder=_text_encoder(),
        tokenizer=_tokenizer(),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return SDModel(SDFamily.SD1, pipe, Path("tiny-sd1"), inpainting=in_channels == 9, **changes)


def sdxl_model() -> SDModel:
    torch.manual_seed(0)
    unet = _unet(
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,
    )
    pipe = diffusers.StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(),
        text_encoder_2=_text_encoder(projection=32),
        tokenizer=_tokenizer(),
        tokenizer_2=_tokenizer(),
        unet=unet,
        scheduler=_scheduler(),
    )
    return SDModel(SDFamily.SDXL, pipe, Path("tiny-sdxl"))


def sdxl_refiner_model() -> SDModel:
    """The refiner: only the second text encoder, aesthetic-score conditioning (5 ids)."""
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        **{
            **_unet(
                addition_embed_type="text_time",
                addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=5 * 8 + 32,
            ).config,
            "cross_attention_dim": 32,
        }
    )
    pipe = diffusers.StableDiffusionXLImg2ImgPipeline(
        vae=_vae(),
        text_encoder=None,
        text_encoder_2=_text_encoder(projection=32),
        tokenizer=None,
        tokenizer_2=_tokenizer(),
        unet=unet,
        scheduler=_scheduler(),
        requires_aesthetics_score=True,
    )
    return SDModel(SDFamily.SDXL_REFINER, pipe, Path("tiny-refiner"))


@pytest.fixture(scope="module")
def sd1(no_network: None) -> SDBackend:
    return SDBackend(sd1_model())


@pytest.fixture(scope="module")
def sdxl(no_network: None) -> SDBackend:
    return SDBackend(sdxl_model())


def run(backend: SDBackend, request: DenoiseRequest) -> tuple[list[DenoiseStep], np.ndarray]:
    gen = backend.denoise(request)
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as done:
            return steps, done.value


class UnetCalls(list):
    """The batch size of every UNet call while it is entered (a forward hook)."""

    def __init__(self, backend: SDBackend) -> None:
        super().__init__()
        self.unet = backend.model.pipe.unet

    def __enter__(self) -> UnetCalls:
        self.handle = self.unet.register_forward_hook(lambda m, a, o: self.append(len(a[0])))
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


BASE = DenoiseRequest(prompt="a red cat", seed=3, steps=4, width=64, height=48)


def _photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_the_network_really_is_blocked() -> None:
    with pytest.raises(NetworkUsedError):
        socket.create_connection(("127.0.0.1", 9))


@pytest.mark.parametrize("name", ["sd1", "sdxl"])
def test_text_to_image_shape_steps_and_previews(name: str, request) -> None:
    backend = request.getfixturevalue(name)
    steps, images = run(backend, replace(BASE, count=2))
    assert images.shape == (2, 48, 64, 3) and images.dtype == np.uint8
    assert [(s.index, s.total) for s in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    for s in steps:  # previews at the latent size, 1/8 of the image
        assert s.preview.shape == (2, 6, 8, 3) and s.preview.dtype == np.uint8
    assert images.std() > 1, "a random network still draws a non-constant picture"


@pytest.mark.parametrize("name", ["sd1", "sdxl"])
def test_same_seed_same_images_and_a_batch_is_its_single_runs(name: str, request) -> None:
    backend = request.getfixturevalue(name)
    _, first = run(backend, BASE)
    _, again = run(backend, BASE)
    _, batch = run(backend, replace(BASE, count=2))
    _, second = run(backend, replace(BASE, seed=BASE.seed + 1))
    np.testing.assert_array_equal(first, again)
    # batched convolutions may round differently from single ones: one level of uint8 at most
    np.testing.assert_allclose(batch[0], first[0], atol=1)
    np.testing.assert_allclose(batch[1], second[0], atol=1)
    assert np.abs(first.astype(int) - second).mean() > 1, "another seed gives another image"


@pytest.mark.parametrize("name", ["sd1", "sdxl"])
def test_text_to_image_matches_the_diffusers_pipeline_itself(name: str, request) -> None:
    """The loop driven here is diffusers' own: same noise, same scheduler, same images."""
    backend = request.getfixturevalue(name)
    wanted = replace(BASE, sampler="euler", guidance=6.0, negative="blurry")
    _, mine = run(backend, wanted)
    noise = torch.randn((1, 4, 6, 8), generator=torch.Generator("cpu").manual_seed(BASE.seed))
    pipe = backend.model.pipe
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(
        prompt=wanted.prompt,
        negative_prompt=wanted.negative,
        num_inference_steps=wanted.steps,
        guidance_scale=wanted.guidance,
        latents=noise,
        height=48,
        width=64,
        output_type="np",
    ).images
    np.testing.assert_allclose(mine[0], (theirs[0] * 255).round(), atol=1)


@pytest.mark.parametrize("sampler", ["euler-a", "lcm", "dpm++"])
def test_stochastic_samplers_keep_each_image_of_a_batch(sd1: SDBackend, sampler: str) -> None:
    request = replace(BASE, sampler=sampler)
    _, batch = run(sd1, replace(request, count=2))
    _, second = run(sd1, replace(request, seed=BASE.seed + 1))
    np.testing.assert_allclose(batch[1], second[0], atol=1)


def test_closing_the_generator_after_step_two_stops_the_run(sd1: SDBackend) -> None:
    vae = sd1.model.pipe.vae
    with UnetCalls(sd1) as calls:
        gen = sd1.denoise(replace(BASE, steps=6))
        assert [next(gen).index, next(gen).index] == [1, 2]
        assert not torch.is_inference_mode_enabled(), "no torch mode stays on between steps"
        gen.close()
        with pytest.raises(StopIteration):
            next(gen)
    assert len(calls) == 2 and not vae.use_tiling
    _, images = run(sd1, BASE)  # the model is intact for the next run
    assert images.shape == (1, 48, 64, 3)


def test_guidance_at_most_one_is_one_model_call_per_image(sd1: SDBackend) -> None:
    with UnetCalls(sd1) as calls:
        run(sd1, replace(BASE, count=2, guidance=1.0))
        run(sd1, replace(BASE, count=2, guidance=7.0, steps=1))
    assert calls == [2, 2, 2, 2, 4]


def test_the_negative_prompt_changes_a_guided_image(sd1: SDBackend) -> None:
    _, plain = run(sd1, replace(BASE, guidance=7.0))
    _, negative = run(sd1, replace(BASE, guidance=7.0, negative="blurry"))
    assert np.abs(plain.astype(int) - negative).max() > 0


def test_img2img_strength_zero_returns_the_input_exactly(sd1: SDBackend) -> None:
    photo = _photo()
    steps, images = run(sd1, replace(BASE, width=0, height=0, init=photo, strength=0.0, count=2))
    assert steps == [] and images.shape == (2, 48, 64, 3)
    assert (images == photo).all()


def test_img2img_runs_the_last_part_of_the_schedule(sd1: SDBackend) -> None:
    photo = _photo()
    steps, images = run(sd1, replace(BASE, steps=10, init=photo, strength=0.5))
    assert [s.index for s in steps] == [1, 2, 3, 4, 5] and steps[-1].total == 5
    assert images.shape == (1, 48, 64, 3)
    _, full = run(sd1, replace(BASE, steps=10, init=photo, strength=1.0))
    _, text_only = run(sd1, replace(BASE, steps=10))
    np.testing.assert_array_equal(full, text_only)  # strength 1 ignores the input


@pytest.mark.parametrize("inpainting", [False, True], ids=["blending", "9-channel"])
def test_inpaint_keeps_every_pixel_outside_the_mask(inpainting: bool) -> None:
    backend = SDBackend(sd1_model(in_channels=9)) if inpainting else SDBackend(sd1_model())
    photo = _photo()
    mask = np.zeros((48, 64), np.float32)
    mask[10:30, 20:50] = 1.0
    mask[30:34, 20:50] = 0.25  # a feathered edge still counts as inside
    steps, images = run(backend, replace(BASE, init=photo, mask=mask, strength=1.0, count=2))
    assert len(steps) == 4
    outside, inside = mask == 0, mask > 0
    assert (images[:, outside] == photo[outside]).all()
    assert (images[:, inside] != photo[inside]).mean() > 0.5


def test_the_sdxl_refiner_refines_an_image() -> None:
    steps, images = run(
        SDBackend(sdxl_refiner_model()), replace(BASE, init=_photo(), strength=0.5, guidance=6.0)
    )
    assert len(steps) == 2 and images.shape == (1, 48, 64, 3)


def test_bad_requests_get_one_clear_message(sd1: SDBackend) -> None:
    with pytest.raises(BadInputError, match="multiples of 8"):
        run(sd1, replace(BASE, width=60))
    with pytest.raises(BadInputError, match="mask needs the image"):
        run(sd1, replace(BASE, mask=np.ones((48, 64), np.float32)))
    with pytest.raises(BadInputError, match="unknown sampler"):
        run(sd1, replace(BASE, sampler="heun"))
    with pytest.raises(BadInputError, match="strength"):
        run(sd1, replace(BASE, init=_photo(), strength=1.5))


def test_few_step_models_get_their_recipe_unless_asked_otherwise() -> None:
    model = sd1_model(few_step=FewStep.TURBO)
    settings = choose_settings(model, DenoiseRequest())
    assert (settings.sampler, settings.steps, settings.guidance) == ("euler-a", 1, 0.0)
    scheduler = build_scheduler(settings)
    assert type(scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert scheduler.config.timestep_spacing == "trailing"
    chosen = choose_settings(model, DenoiseRequest(sampler="ddim", steps=3, guidance=2.0))
    assert (chosen.sampler, chosen.steps, chosen.guidance) == ("ddim", 3, 2.0)
    img2img = choose_settings(model, DenoiseRequest(init=_photo(), strength=0.5))
    assert img2img.steps == 2  # half of a 2-step schedule: the one step Turbo was made for
    lcm = choose_settings(replace(model, few_step=FewStep.LCM), DenoiseRequest())
    assert (lcm.sampler, lcm.steps, lcm.guidance) == ("lcm", 4, 1.0)
    lightning = choose_settings(replace(model, few_step=FewStep.LIGHTNING), DenoiseRequest())
    assert (lightning.sampler, lightning.guidance) == ("euler", 0.0)

    backend = SDBackend(model)
    with UnetCalls(backend) as calls:
        steps, images = run(backend, replace(BASE, steps=20, guidance=5.0, sampler="dpm++"))
    assert len(steps) == 1 and calls == [1] and images.shape == (1, 48, 64, 3)


def test_v_prediction_reaches_every_scheduler() -> None:
    model = sd1_model(prediction="v_prediction")
    for sampler in ("dpm++", "euler", "ddim", "unipc"):
        settings = choose_settings(model, DenoiseRequest(sampler=sampler))
        assert build_scheduler(settings).config.prediction_type == "v_prediction"
    # the sampler's own settings survive a config that lists them as defaults
    karras = build_scheduler(choose_settings(model, DenoiseRequest(sampler="dpm++-karras")))
    assert karras.config.use_karras_sigmas
    _, images = run(SDBackend(model), BASE)
    assert images.shape == (1, 48, 64, 3)


def test_preview_maps_latents_through_the_published_factors() -> None:
    zeros = torch.zeros((1, 4, 2, 3))
    assert (latent_preview(zeros, SDFamily.SD1) == 128).all()  # 0 in [-1, 1] is mid grey
    xl = latent_preview(zeros, SDFamily.SDXL)[0, 0, 0]
    assert xl.tolist() == [141, 125, 127]  # SDXL's bias: (0.1084, -0.0175, -0.0011)
    one = torch.zeros((1, 4, 1, 1))
    one[0, 3] = 1.0  # SD's fourth channel is mostly "less blue"
    r, g, b = latent_preview(one, SDFamily.SD1)[0, 0, 0].tolist()
    assert b < g < r < 128


def test_estimate_grows_with_size_and_count_and_a_tiny_budget_is_refused() -> None:
    small = estimate_run(SDFamily.SD1, 512, 512, count=1, steps=20)
    large = estimate_run(SDFamily.SD1, 768, 768, count=1, steps=20)
    batch = estimate_run(SDFamily.SD1, 512, 512, count=4, steps=20)
    assert small.peak_bytes < large.peak_bytes and small.seconds < large.seconds
    assert small.peak_bytes < batch.peak_bytes and small.seconds < batch.seconds
    # SD 1.5 in fp32: about 4 GiB of weights (1.07 G parameters)
    assert 3.9 < small.weights_bytes / 2**30 < 4.1
    measured = estimate_run(
        SDFamily.SD1, 512, 512, steps=10, guidance=False, step_seconds=2.0, device="cuda"
    )
    assert measured.seconds == pytest.approx(2.0 * (10 + 2))  # ten steps and the decode
    check_fits(small, 64 << 30)
    weights_and_work = r"\(\d+\.\d GiB of weights and \d+\.\d GiB to work\)"
    with pytest.raises(BadInputError, match=rf"needs \d+\.\d GiB {weights_and_work}, 0\.5 GiB av"):
        check_fits(small, 512 << 20)
    check_fits(small, small.working_bytes, weights_loaded=True)


def test_estimate_of_a_loaded_model_counts_its_parameters(sd1: SDBackend) -> None:
    estimate = estimate_run(sd1.model, 64, 64, steps=4)
    params = sum(
        p.numel()
        for m in (sd1.model.pipe.unet, sd1.model.pipe.vae, sd1.model.pipe.text_encoder)
        for p in m.parameters()
    )
    assert estimate.weights_bytes == params * 4
