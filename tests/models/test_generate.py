"""Sampling from the VAE and GAN: seeds, interpolation, variations, grids, weight round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from studio.errors import BadWeightsError
from studio.models import generate as gen
from studio.models.archs.gan import GANArch, Generator
from studio.models.archs.srvgg import SRVGGNetCompact
from studio.models.archs.vae import ConvVAE, VAEArch
from studio.paths import checkpoints_dir

EMOJI = Path(__file__).resolve().parents[1] / "images" / "emoji"
VAE_WEIGHTS = checkpoints_dir() / "studio-emoji-vae.safetensors"
#: the committed VAE reconstructs the 8 held-out test emoji at least this well (mean PSNR, dB)
VAE_MIN_PSNR = 20.0


def tiny_gan() -> Generator:
    """A random generator whose batch-norm statistics fit its own activations."""
    torch.manual_seed(1)
    g = Generator(8, (16, 8, 8, 8, 8))
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        g(torch.randn(64, 8))
    return g.eval()


def tiny_vae() -> ConvVAE:
    torch.manual_seed(2)
    return ConvVAE(8, (4, 8, 8, 8), (16, 8, 8, 8, 8)).eval()


@pytest.fixture(params=["gan", "vae"])
def model(request) -> torch.nn.Module:
    return tiny_gan() if request.param == "gan" else tiny_vae()


def save(module: torch.nn.Module, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return path


def test_noise_is_a_pure_function_of_the_seed() -> None:
    a, b = gen.noise(7, 16), gen.noise(7, 16)
    assert a.dtype == torch.float32 and a.shape == (1, 16) and a.device.type == "cpu"
    assert torch.equal(a, b)
    expected = torch.randn(1, 16, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, expected), (
        "a seed must name the stream of torch's CPU generator, nothing else"
    )


def test_same_seed_same_image(model) -> None:
    first = gen.sample(model, [5, 6])
    again = gen.sample(model, [5, 6])
    assert first.dtype == np.uint8 and first.shape == (2, 64, 64, 3)
    assert np.array_equal(first, again)
    # a seed's image does not depend on its neighbours in the batch (no batch statistics)
    alone = gen.sample(model, [6])[0]
    assert np.abs(alone.astype(int) - first[1]).max() <= 1


def test_different_seeds_differ(model) -> None:
    images = gen.sample(model, [1, 2, 3]).astype(np.float32)
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(images[i] - images[j]).mean() > 2.0


def test_truncation_scales_the_noise(model) -> None:
    z = gen.sample_latents(model, [3], 0.5)
    assert torch.equal(z, model.from_noise(gen.noise(3, model.z_dim) * 0.5))
    assert not np.array_equal(gen.sample(model, [3], 0.5), gen.sample(model, [3]))


def test_interpolation_endpoints_equal_the_seeds_images(model) -> None:
    z = gen.interpolation_latents(model, 3, 11, 5, truncation=0.8)
    assert torch.equal(z[0:1], gen.sample_latents(model, [3], 0.8))
    assert torch.equal(z[4:5], gen.sample_latents(model, [11], 0.8))
    # decoded one at a time, as the engine does: bit-identical to the seeds' own images
    assert np.array_equal(gen.decode(model, z[0:1]), gen.sample(model, [3], 0.8))
    assert np.array_equal(gen.decode(model, z[4:5]), gen.sample(model, [11], 0.8))
    strip = gen.interpolate(model, 3, 11, 5, 0.8)
    assert strip.shape == (5, 64, 64, 3)
    assert not np.array_equal(strip[1], strip[0]) and not np.array_equal(strip[3], strip[4])


def test_slerp_stays_at_a_gaussian_norm() -> None:
    a, b = gen.noise(0, 256), gen.noise(1, 256)
    mid = gen.slerp(a, b, 0.5)
    # a straight line would shrink the norm by about 1/sqrt(2)
    assert float(mid.norm()) == pytest.approx(float((a.norm() + b.norm()) / 2), rel=0.02)
    assert torch.equal(gen.slerp(a, b, 0.0), a) and torch.equal(gen.slerp(a, b, 1.0), b)


def test_vae_samples_from_its_fitted_prior_and_keeps_it_in_the_weights(tmp_path) -> None:
    vae = tiny_vae()
    eps = gen.noise(4, 8)
    assert torch.equal(vae.from_noise(eps), eps), "the default prior is N(0, I)"
    with torch.no_grad():
        vae.prior_loc.fill_(0.5)
        vae.prior_scale_tril.copy_(torch.diag(torch.linspace(0.1, 2.0, 8)))
    z = gen.sample_latents(vae, [4])
    assert torch.allclose(z, 0.5 + eps * torch.linspace(0.1, 2.0, 8))
    loaded = gen.load_generator(save(vae, tmp_path / "v.safetensors")).module
    assert np.array_equal(gen.sample(loaded, [4]), gen.sample(vae, [4]))
    # weights written without the prior load with N(0, I)
    plain = {k: v for k, v in vae.state_dict().items() if not k.startswith("prior_")}
    save_file({k: v.contiguous() for k, v in plain.items()}, str(tmp_path / "p.safetensors"))
    old = gen.load_generator(tmp_path / "p.safetensors").module
    assert torch.equal(old.prior_scale_tril, torch.eye(8)) and not old.prior_loc.any()


def test_variations_with_strength_zero_reproduce_the_reconstruction() -> None:
    vae = tiny_vae()
    image = np.asarray(Image.open(next(EMOJI.glob("*.png"))).convert("RGB"))
    out = gen.variations(vae, image, strength=0.0, seed=4, n=3)
    with torch.inference_mode():
        rec = vae(gen.prepare_image(image, 64))
    expected = (rec.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()[0]
    for im in out:
        assert np.array_equal(im, expected)
    varied = gen.variations(vae, image, strength=1.0, seed=4, n=2)
    assert not np.array_equal(varied[0], expected) and not np.array_equal(varied[0], varied[1])


def test_prepare_image_composites_alpha_on_white_and_pads_to_square() -> None:
    rgba = np.zeros((40, 80, 4), np.uint8)  # fully transparent, wide
    rgba[:, :, 0] = 255
    x = gen.prepare_image(rgba, 64)
    assert x.shape == (1, 3, 64, 64)
    assert float(x.min()) > 0.99, "transparent pixels and the padding must become white"


def test_weight_round_trip_detects_and_loads_each_kind(tmp_path, model) -> None:
    path = save(model, tmp_path / "w.safetensors")
    loaded = gen.load_generator(path)
    kind = "gan" if isinstance(model, Generator) else "vae"
    assert loaded.extra == {"kind": kind, "z_dim": 8, "size": 64, "purpose": "Generation"}
    assert np.array_equal(gen.sample(loaded.module, [9]), gen.sample(model, [9]))


def test_detection_keeps_the_architectures_apart() -> None:
    vae_sd, gan_sd = tiny_vae().state_dict(), tiny_gan().state_dict()
    sr_sd = SRVGGNetCompact(3, 3, 8, 2, 2).state_dict()
    assert VAEArch().detect(vae_sd) and not VAEArch().detect(gan_sd)
    assert GANArch().detect(gan_sd) and not GANArch().detect(vae_sd)
    assert not VAEArch().detect(sr_sd) and not GANArch().detect(sr_sd)


def test_unknown_weights_are_refused(tmp_path) -> None:
    path = save(SRVGGNetCompact(3, 3, 8, 2, 2), tmp_path / "sr.safetensors")
    with pytest.raises(BadWeightsError, match="not a VAE or GAN"):
        gen.load_generator(path)


def test_grid_places_cells_row_major_with_white_gaps() -> None:
    images = np.stack([np.full((4, 4, 3), i * 40, np.uint8) for i in range(5)])
    assert gen.grid_shape(5) == (2, 3) and gen.grid_shape(5, "interpolate") == (1, 5)
    grid = gen.make_grid(images, cols=3, gap=2)
    assert grid.shape == (2 * 4 + 2, 3 * 4 + 2 * 2, 3)
    x, y = gen.cell_origin(4, 3, 4, 2)
    assert (x, y) == (6, 6) and (grid[y : y + 4, x : x + 4] == 160).all()
    assert (grid[4:6] == 255).all() and (grid[6:, 12:] == 255).all()


@pytest.mark.slow
@pytest.mark.skipif(not VAE_WEIGHTS.is_file(), reason="committed VAE checkpoint not present")
def test_committed_vae_reconstructs_held_out_emoji() -> None:
    vae = gen.load_generator(VAE_WEIGHTS).module
    files = sorted(EMOJI.glob("*.png"))
    assert len(files) == 8
    scores = []
    for f in files:
        image = np.asarray(Image.open(f).convert("RGB"))
        rec = gen.variations(vae, image, strength=0.0, seed=0, n=1)[0]
        mse = np.mean((rec.astype(np.float64) - image) ** 2)
        scores.append(10 * np.log10(255.0**2 / mse))
    assert np.mean(scores) > VAE_MIN_PSNR, f"PSNR per image: {np.round(scores, 2)}"
