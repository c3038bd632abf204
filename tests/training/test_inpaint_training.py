"""Inpainting training (tiny resumable run, warm start), loss and evaluation metrics."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from studio.models.archs.inpaint_unet import InpaintUNet, InpaintUNetArch
from studio.training import eval_inpaint, train_inpaint
from studio.training.train_sr import export_weights


def _smooth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    small = rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def _fake_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_smooth(rng, 256, 272)).save(root / split / f"{i}.png")
    return root


def _args(tmp_path: Path, data: Path, *extra: str) -> list[str]:
    args = ["--name", "tiny", "--widths", "8,8,16", "--blocks", "1", "--patches", "32,48"]
    args += ["--batch", "2", "--data", str(data), "--runs", str(tmp_path / "runs")]
    return [*args, "--log-every", "1", "--warmup", "1", "--eval-per-image", "1", *extra]


def test_two_step_run_writes_state_exports_and_resumes(tmp_path: Path) -> None:
    data = _fake_data(tmp_path / "data")
    export = tmp_path / "ckpt" / "tiny-inpaint.safetensors"
    base = _args(tmp_path, data, "--export", str(export))
    first = train_inpaint.train(train_inpaint.build_parser().parse_args([*base, "--steps", "2"]))
    assert first["step"] == 2 and first["history"][-1]["step"] == 2
    assert np.isfinite(first["history"][-1]["psnr"])

    state = torch.load(tmp_path / "runs/tiny/state.pt", weights_only=True)
    assert state["step"] == 2
    sd = load_file(str(export))
    with safe_open(str(export), "pt") as f:
        meta = f.metadata()
    assert meta["arch"] == "InpaintUNet" and meta["steps"] == "2"
    arch = InpaintUNetArch()
    assert arch.detect(sd)
    for k, v in state["model"].items():
        assert torch.equal(sd[k], v)

    second = train_inpaint.train(train_inpaint.build_parser().parse_args([*base, "--steps", "4"]))
    assert second["step"] == 4
    log = (tmp_path / "runs/tiny/log.txt").read_text()
    assert "resumed" in log and "at step 2" in log
    losses = [float(ln.split("loss ")[1].split()[0]) for ln in log.splitlines() if " loss " in ln]
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_warm_start_from_weights(tmp_path: Path) -> None:
    data = _fake_data(tmp_path / "data")
    init = tmp_path / "init.safetensors"
    export_weights(InpaintUNet((8, 8, 16), 1), init, {"arch": "InpaintUNet"})
    args = _args(tmp_path, data, "--steps", "1", "--eval-every", "0", "--init", str(init))
    assert train_inpaint.train(train_inpaint.build_parser().parse_args(args))["step"] == 1
    assert "warm start" in (tmp_path / "runs/tiny/log.txt").read_text()


def test_widening_adds_identity_blocks_and_a_run_starts_from_them(tmp_path: Path) -> None:
    torch.manual_seed(0)
    small = InpaintUNet((8, 8, 16), 1)
    with torch.no_grad():
        small.head.weight.normal_(0, 0.1)  # a trained-looking net (the head starts at zero)
    torch.manual_seed(1)
    big = InpaintUNet((8, 8, 16), 3)
    big.load_state_dict(train_inpaint.widened(small.state_dict(), big))
    x = torch.cat([torch.rand(1, 3, 32, 40), (torch.rand(1, 1, 32, 40) > 0.7).float()], 1)
    with torch.no_grad():
        assert torch.equal(big(x), small(x)), "the new blocks start as the identity"
    assert big.body[2].local.weight.abs().sum() > 0, "but are not dead: only mix is zero"
    data = _fake_data(tmp_path / "data")
    init = tmp_path / "small.safetensors"
    export_weights(small, init, {"arch": "InpaintUNet"})
    args = _args(tmp_path, data, "--steps", "1", "--eval-every", "0", "--widen-from", str(init))
    args[args.index("--blocks") + 1] = "3"
    assert train_inpaint.train(train_inpaint.build_parser().parse_args(args))["step"] == 1
    assert "widened" in (tmp_path / "runs/tiny/log.txt").read_text()
    wrong = InpaintUNet((8, 8, 32), 3)
    with pytest.raises(SystemExit, match="enc3"):
        train_inpaint.widened(small.state_dict(), wrong)


def test_loss_counts_only_the_hole_and_its_border() -> None:
    gt = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:8, 4:8] = 1
    wrong_outside = gt + (1 - mask) * 0.5
    assert train_inpaint.inpaint_loss(wrong_outside, gt, mask, 0.5, 0.0) == 0
    assert train_inpaint.inpaint_loss(wrong_outside, gt, mask, 0.5, 0.1) > 0
    hole_only = train_inpaint.inpaint_loss(gt + mask * 0.2, gt, mask, 0.0, 0.0).item()
    assert abs(hole_only - 0.2) < 1e-5  # the mean L1 over hole pixels (raw, not clamped)


def test_masked_metrics_ignore_pixels_outside_the_hole() -> None:
    rng = np.random.default_rng(0)
    gt = _smooth(rng, 64, 64)
    mask = np.zeros((64, 64), np.float32)
    mask[20:40, 20:40] = 1
    out = gt.copy()
    out[mask == 0] = 0  # ruin the outside: must not matter for PSNR
    out[mask > 0] = np.clip(gt[mask > 0].astype(int) + 10, 0, 255)
    d = out[mask > 0].astype(float) - gt[mask > 0]
    ref = 10 * np.log10(255**2 / np.mean(d**2))
    assert abs(eval_inpaint.psnr_masked(out, gt, mask) - ref) < 1e-9
    assert eval_inpaint.ssim_masked(gt, gt, mask) == 1.0
    assert eval_inpaint.ssim_masked(out, gt, mask) < 1.0


def test_cv2_fillers_keep_rgb_order_and_the_outside() -> None:
    img = np.zeros((48, 48, 3), np.uint8)
    img[..., 0] = 200  # pure red in RGB
    mask = np.zeros((48, 48), np.float32)
    mask[16:32, 16:32] = 1
    for method in (cv2.INPAINT_TELEA, cv2.INPAINT_NS):
        out = eval_inpaint.cv2_filler(method, 3)(img, mask)
        assert np.array_equal(out[mask == 0], img[mask == 0])
        # NS/Telea wobble by a few levels; a BGR leak would put 200 in the blue channel
        assert np.abs(out[mask > 0].astype(int) - (200, 0, 0)).max() <= 4


def test_evaluation_samples_are_deterministic(tmp_path: Path) -> None:
    data = _fake_data(tmp_path / "data")
    a = eval_inpaint.load_samples(data, per_image=2)
    b = eval_inpaint.load_samples(data, per_image=2)
    assert [s[0] for s in a] == [s[0] for s in b] and len(a) == 2
    assert all(
        np.array_equal(x[2], y[2]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True)
    )
    assert a[0][1].shape == (256, 256, 3)


def test_log_mse_term_is_minus_the_mean_hole_psnr_over_ten() -> None:
    gt = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 2:10, 3:9] = 1
    pred = gt + mask * torch.tensor([0.1, 0.3]).view(2, 1, 1, 1)
    loss = train_inpaint.inpaint_loss(pred, gt, mask, 0.0, 0.0, l1_w=0.0, logmse_w=1.0)
    psnr = -10 * np.log10(np.array([0.01, 0.09]) + train_inpaint.LOG_EPS)
    assert abs(loss.item() + psnr.mean() / 10) < 1e-5


def test_augmented_batches_keep_range_and_shape() -> None:
    rng = np.random.default_rng(3)
    imgs = [_smooth(rng, 200, 240), _smooth(rng, 300, 180)]
    x, m = train_inpaint.random_batch(imgs, np.array([0.5, 0.5]), 64, 6, rng)
    assert x.shape == (6, 3, 64, 64) and m.shape == (6, 1, 64, 64)
    assert x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
    a = train_inpaint.random_batch(imgs, np.array([0.5, 0.5]), 32, 2, np.random.default_rng(9))
    b = train_inpaint.random_batch(imgs, np.array([0.5, 0.5]), 32, 2, np.random.default_rng(9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
