"""Super-resolution training pieces: degradations, a tiny resumable run, evaluation metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from studio.models.archs.srvgg import SRVGGArch
from studio.training import degrade, eval_sr, train_sr


def smooth_image(rng: np.random.Generator, h: int, w: int, grain: int = 8) -> np.ndarray:
    """A photo-like uint8 RGB image: upsampled noise (smooth regions) plus +-grain pixel noise."""
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))
    noisy = big.astype(np.int16) + rng.integers(-grain, grain + 1, big.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("scale", [2, 4])
def test_random_pair_shapes_ranges_and_determinism(scale: int) -> None:
    img = smooth_image(np.random.default_rng(0), 300, 340)
    a = degrade.random_pair(img, scale, 24, np.random.default_rng(7))
    b = degrade.random_pair(img, scale, 24, np.random.default_rng(7))
    c = degrade.random_pair(img, scale, 24, np.random.default_rng(8))
    assert a[0].shape == (24, 24, 3) and a[1].shape == (24 * scale, 24 * scale, 3)
    assert a[0].dtype == np.uint8 and a[1].dtype == np.uint8
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_each_degradation_is_mild() -> None:
    """Each option alone (bicubic kernel) keeps shape/dtype and stays near the clean bicubic LR."""
    hr = smooth_image(np.random.default_rng(1), 128, 96, grain=0)
    clean = degrade.bicubic_down(hr, 2)
    only = {"blur": {"p_blur": 1.0}, "noise": {"p_noise": 1.0}, "jpeg": {"p_jpeg": 1.0}}
    for name, opts in only.items():
        cfg = degrade.DegradeConfig(kernel_probs=(("bicubic", 1.0),), **opts)
        for seed in range(3):
            lr = degrade.degrade(hr, 2, np.random.default_rng(seed), cfg)
            assert lr.shape == (64, 48, 3) and lr.dtype == np.uint8
            diff = lr.astype(np.float64) - clean
            assert np.abs(diff).max() > 0, name
            if name == "noise":  # sigma <= 4 plus rounding
                assert diff.std() < 4.5
            else:  # mild: luma PSNR against the clean LR above 25 dB
                assert eval_sr.psnr_y(lr, clean, 0) > 25, name


def test_clean_pair_matches_whole_image_bicubic_inside() -> None:
    """With the clean config the LR crop equals the bicubic LR of its HR away from the border."""
    img = smooth_image(np.random.default_rng(2), 200, 200)
    lr, hr = degrade.random_pair(img, 2, 32, np.random.default_rng(3), degrade.CLEAN)
    ref = degrade.bicubic_down(hr, 2)
    assert np.array_equal(lr[2:-2, 2:-2], ref[2:-2, 2:-2])


def test_random_batch_stacks() -> None:
    rng = np.random.default_rng(0)
    imgs = [smooth_image(rng, 160, 200), smooth_image(rng, 240, 180)]
    lr, hr = degrade.random_batch(imgs, np.array([0.5, 0.5]), 2, 16, 5, rng)
    assert lr.shape == (5, 16, 16, 3) and hr.shape == (5, 32, 32, 3)


def _fake_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(smooth_image(rng, 96, 112)).save(root / split / f"{i}.png")
    return root


def test_tiny_training_run_exports_and_resumes(tmp_path: Path) -> None:
    data = _fake_data(tmp_path / "data")
    export = tmp_path / "ckpt" / "tiny-x2.safetensors"
    base = ["--name", "tiny", "--scale", "2", "--nf", "8", "--num-conv", "2", "--patch", "16"]
    base += ["--batch", "4", "--data", str(data), "--runs", str(tmp_path / "runs")]
    base += ["--export", str(export), "--log-every", "1", "--warmup", "1"]
    first = train_sr.train(train_sr.build_parser().parse_args([*base, "--steps", "3"]))
    assert first["step"] == 3 and first["history"][-1]["step"] == 3
    assert np.isfinite(first["history"][-1]["psnr"])

    state = torch.load(tmp_path / "runs/tiny/state.pt", weights_only=True)
    assert state["step"] == 3
    sd = load_file(str(export))
    arch = SRVGGArch()
    assert arch.detect(sd)
    loaded = arch.load(sd)
    assert loaded.scale == 2
    for k, v in state["model"].items():
        assert torch.equal(sd[k], v)
    out = loaded.module(torch.rand(1, 3, 10, 12))
    assert out.shape == (1, 3, 20, 24)

    second = train_sr.train(train_sr.build_parser().parse_args([*base, "--steps", "5"]))
    assert second["step"] == 5
    log = (tmp_path / "runs/tiny/log.txt").read_text()
    assert "resumed" in log and "at step 3" in log
    losses = [
        float(line.split("loss ")[1].split()[0]) for line in log.splitlines() if " loss " in line
    ]
    assert len(losses) == 5 and all(np.isfinite(losses))


def test_warm_start_from_weights(tmp_path: Path) -> None:
    data = _fake_data(tmp_path / "data")
    init = tmp_path / "init.safetensors"
    net = train_sr.SRVGGNetCompact(3, 3, 8, 2, 2)
    train_sr.export_weights(net, init, {"arch": "SRVGGNetCompact"})
    args = ["--name", "warm", "--scale", "2", "--nf", "8", "--num-conv", "2", "--patch", "16"]
    args += ["--batch", "2", "--steps", "1", "--eval-every", "0", "--data", str(data)]
    args += ["--runs", str(tmp_path / "runs"), "--init", str(init)]
    assert train_sr.train(train_sr.build_parser().parse_args(args))["step"] == 1
    assert "warm start" in (tmp_path / "runs/warm/log.txt").read_text()


def test_lr_schedule() -> None:
    assert train_sr.lr_at(0, 100, 1e-3, 0.0, 10) == pytest.approx(1e-4)
    assert train_sr.lr_at(10, 100, 1e-3, 0.0, 10) == pytest.approx(1e-3)
    assert train_sr.lr_at(100, 100, 1e-3, 1e-6, 10) == pytest.approx(1e-6)


def _ref_psnr_y(a: np.ndarray, b: np.ndarray, border: int) -> float:
    w = np.array([65.481, 128.553, 24.966]) / 255.0
    ya = a[border:-border, border:-border].astype(np.float64) @ w + 16
    yb = b[border:-border, border:-border].astype(np.float64) @ w + 16
    return 10 * np.log10(255.0**2 / np.mean((ya - yb) ** 2))


def test_eval_psnr_of_identity_upscale_matches_numpy_reference() -> None:
    rng = np.random.default_rng(5)
    images = [smooth_image(rng, 64, 80), smooth_image(rng, 72, 72)]

    def nearest(lr: np.ndarray) -> np.ndarray:  # the "identity" upscale: pixel repetition
        return lr.repeat(2, axis=0).repeat(2, axis=1)

    res = eval_sr.evaluate({"nearest": nearest}, images, 2)
    ref = [_ref_psnr_y(nearest(degrade.bicubic_down(im, 2)), im, 4) for im in images]
    assert res["nearest"]["psnr"] == pytest.approx(np.mean(ref), abs=1e-9)
    assert res["nearest"]["n"] == 2 and 0 < res["nearest"]["ssim"] < 1
    assert res["bicubic"]["psnr"] > res["nearest"]["psnr"]
    assert eval_sr.psnr_y(images[0], images[0]) == float("inf")
    assert eval_sr.ssim_y(images[0], images[0]) == pytest.approx(1.0)


def test_ssim_matches_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(6)
    a = smooth_image(rng, 64, 64)
    b = np.clip(a.astype(np.int16) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ya, yb = eval_sr.rgb_to_y(a)[4:-4, 4:-4], eval_sr.rgb_to_y(b)[4:-4, 4:-4]
    ref = metrics.structural_similarity(
        ya, yb, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert eval_sr.ssim_y(a, b) == pytest.approx(ref, abs=1e-6)


def test_model_upscaler_pads_to_size_multiple() -> None:
    class Twice(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[-1] % 4 == 0 and x.shape[-2] % 4 == 0
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    lr = smooth_image(np.random.default_rng(0), 30, 42)
    out = eval_sr.run_module(Twice(), lr, size_multiple=4)
    assert out.shape == (60, 84, 3)
    assert np.array_equal(out, lr.repeat(2, axis=0).repeat(2, axis=1))
