"""Adversarial fine-tuning of the inpainting network: a tiny resumable run, its losses and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from studio.models.archs.inpaint_unet import InpaintUNet
from studio.training import train_inpaint_gan as gan
from studio.training.train_sr import export_weights


def _fake_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            small = rng.integers(0, 256, (16, 17, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((272, 256), Image.Resampling.BICUBIC)
            img.save(root / split / f"{i}.png")
    return root


def _args(tmp_path: Path, data: Path, init: Path, steps: int) -> list[str]:
    args = ["--name", "tiny", "--widths", "8,8,16", "--blocks", "1", "--disc-width", "8"]
    args += ["--patches", "32", "--batch", "2", "--data", str(data), "--runs", str(tmp_path)]
    args += ["--init", str(init), "--steps", str(steps), "--log-every", "1", "--warmup", "1"]
    return [*args, "--eval-every", "2", "--eval-images", "1", "--r1-every", "1"]


def test_tiny_run_trains_both_networks_and_resumes(tmp_path: Path) -> None:
    data = _fake_data(tmp_path / "data")
    init = tmp_path / "init.safetensors"
    export_weights(InpaintUNet((8, 8, 16), 1), init, {})
    first = gan.train(gan.build_parser().parse_args(_args(tmp_path, data, init, 2)))
    assert first["step"] == 2 and [h["step"] for h in first["history"]] == [0, 2]
    state = torch.load(tmp_path / "tiny" / "state.pt", weights_only=True)
    assert {"model", "optim", "disc", "optim_d"} <= set(state)
    disc_before = {k: v.clone() for k, v in state["disc"].items()}
    second = gan.train(gan.build_parser().parse_args(_args(tmp_path, data, init, 4)))
    assert second["step"] == 4
    assert [h["step"] for h in second["history"]] == [0, 2, 4]
    log = (tmp_path / "tiny" / "log.txt").read_text()
    assert "resumed" in log and "adv" in log
    after = torch.load(tmp_path / "tiny" / "state.pt", weights_only=True)["disc"]
    assert any(not torch.equal(disc_before[k], after[k]) for k in after)


def test_discriminator_sees_known_patches_of_a_fake_as_real() -> None:
    torch.manual_seed(0)
    disc = gan.PatchDiscriminator(8)
    real = torch.rand(2, 3, 32, 32)
    no_hole = torch.zeros(2, 1, 32, 32)
    # with no hole, the "fake" is judged against the real target everywhere: the fake term
    # equals the real term when the images are the same
    same = gan.discriminator_loss(disc, real, real.clone(), no_hole, r1=0.0)
    logits, _ = disc(real)
    expected = 2 * torch.nn.functional.softplus(-logits).mean()
    assert torch.allclose(same, expected, atol=1e-6)
    full = gan.discriminator_loss(disc, real, real.clone(), torch.ones_like(no_hole), r1=0.0)
    expected_full = (
        torch.nn.functional.softplus(-logits).mean() + torch.nn.functional.softplus(logits).mean()
    )
    assert torch.allclose(full, expected_full, atol=1e-6)


def test_mixed_masks_put_object_blobs_and_outpaint_bands_in_the_batch() -> None:
    rng = np.random.default_rng(0)
    base = torch.zeros(64, 1, 64, 64)
    mixed = gan.mixed_masks(base, 0.5, 0.5, rng)
    cover = mixed.mean((1, 2, 3))
    assert bool((cover >= 0.15).all())
    bands = [
        m[0]
        for m in mixed
        if bool((m[0].amax(0) == m[0].amin(0)).all()) or bool((m[0].amax(1) == m[0].amin(1)).all())
    ]
    assert 10 < len(bands) < 54  # about half are bands along one side
    assert torch.equal(gan.mixed_masks(base, 0.0, 0.0, rng), base)


def test_a_discriminator_that_sees_the_mask_trains_and_saves_four_input_channels(
    tmp_path: Path,
) -> None:
    data = _fake_data(tmp_path / "data")
    init = tmp_path / "init.safetensors"
    export_weights(InpaintUNet((8, 8, 16), 1), init, {})
    args = [*_args(tmp_path, data, init, 2), "--disc-sees-mask"]
    assert gan.train(gan.build_parser().parse_args(args))["step"] == 2
    state = torch.load(tmp_path / "tiny" / "state.pt", weights_only=True)
    assert state["disc"]["layers.0.weight"].shape[1] == 4
    assert state["config"]["disc_sees_mask"] is True
