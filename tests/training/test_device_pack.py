"""The device pack (one small file for a lent GPU) and the device run on the CPU: images come back
exactly, caption ids point at the right captions, the reduced text states keep the captions
apart, the folded export equals the reduced model, and two short runs train, export and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from studio.training import device_pack as dp
from studio.training import device_run as dr

TEXTS = ["", "a red apple", "arrow pointing left", "a cat", "a blue car", "a green tree", "sun"]


def _states(n: int, rank: int = 12, seed: int = 0) -> torch.Tensor:
    """Token states with the low-rank structure real MiniLM states have (plus noise)."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(rank, dp.TEXT_DIM, generator=g)
    return torch.randn(n, dp.TOKENS, rank, generator=g) @ basis + 0.05 * torch.randn(
        n, dp.TOKENS, dp.TEXT_DIM, generator=g
    )


def make_source(root: Path) -> Path:
    """A captioned pack in the layout of :mod:`studio.training.captioned`."""
    rng = np.random.default_rng(0)
    m = len(TEXTS)
    lengths = torch.tensor([2, 5, 6, 4, 5, 5, 3])
    mask = (torch.arange(16)[None] < lengths[:, None]).to(torch.uint8)
    tokens = _states(m) * mask[..., None]
    pooled = dp.pooled(tokens, mask.bool())
    root.mkdir(parents=True)
    save_file(
        {"tokens": tokens.half(), "mask": mask, "pooled": pooled.half()},
        str(root / "captions.safetensors"),
    )
    (root / "captions.json").write_text(json.dumps(TEXTS))
    for split, n in (("train", 10), ("val", 3)):
        ids = np.full((n, 8), -1, np.int32)
        for r in range(n):
            k = 1 + r % 6
            ids[r, :k] = rng.choice(np.arange(1, m), k, replace=False)
        ids[0, :2] = [2, 1]  # "arrow pointing left": never mirrored
        images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        images[:, :20] = 255  # a white band, as most of the real pictures have
        np.savez(root / f"{split}.npz", images=images, caption_ids=ids, canonical=ids[:, 0])
    evals = [
        {"index": 1, "caption": "a cat", "paraphrase": "a kitty"},
        {"index": 2, "caption": "a blue car", "paraphrase": "an azure automobile"},
    ]
    (root / "eval.json").write_text(json.dumps(evals))
    return root


def fake_encoder(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mask = torch.zeros(len(texts), 16, dtype=torch.bool)
    mask[:, :4] = True
    tokens = _states(len(texts), seed=1) * mask[..., None]
    return tokens, mask, dp.pooled(tokens, mask)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def built(tmp_path, one_thread) -> tuple[Path, Path, dict]:
    src = make_source(tmp_path / "src")
    out = tmp_path / "pack.npz"
    summary = dp.build(src, out, dims=16, per_image=4, encoder=fake_encoder, log=lambda _m: None)
    return src, out, summary


def test_pack_round_trips_images_and_captions(built) -> None:
    src, out, summary = built
    pack = dp.load(out)
    texts = json.loads((src / "captions.json").read_text())
    for split in ("train", "val"):
        with np.load(src / f"{split}.npz") as z:
            images, ids = z["images"], z["caption_ids"]
        got = getattr(pack, f"{split}_images")
        assert got.dtype == np.uint8 and np.array_equal(got, images), f"{split} images differ"
        new = getattr(pack, f"{split}_caption_ids")
        assert new.shape == (len(images), 4)
        assert ((new >= 0) == (ids[:, :4] >= 0)).all()
        assert new.max() < len(pack.texts)
        for r in range(len(images)):
            kept = [pack.texts[c] for c in new[r] if c >= 0]
            assert kept == [texts[c] for c in ids[r, :4] if c >= 0]
    assert pack.texts[0] == "", "the empty caption keeps index 0 (caption dropout)"
    with np.load(src / "train.npz") as z:
        arrow = (z["caption_ids"] == TEXTS.index("arrow pointing left")).any(1)
    assert not pack.train_flip_ok[0], "'arrow pointing left' must never be mirrored"
    assert np.array_equal(pack.train_flip_ok, ~arrow)
    assert pack.texts[pack.eval_paraphrase[0]] == "a kitty"
    assert pack.eval_caption[0] in pack.pooled and pack.eval_paraphrase[0] in pack.pooled
    assert pack.tokens.shape == (len(pack.texts), 16, 16) and pack.dims == 16
    assert (pack.tokens[~pack.mask] == 0).all()
    assert summary["bank"] == len(pack.texts) == len(TEXTS) + 2


def test_reduced_states_keep_the_captions_apart() -> None:
    """On real MiniLM states the 64-d int8 pack measured pooled cosine 0.83 (mean) and
    retrieval@1 0.94 among 4,000 captions; on states of rank 12, 16 dimensions keep nearly all
    of it, and int8 alone (no projection) loses nothing that matters."""
    tokens = _states(200, seed=3)
    mask = torch.ones(200, 16, dtype=torch.bool)
    mask[:, 6:] = False
    tokens = tokens * mask[..., None]
    proj = dp.fit_projection(tokens, mask, 16)
    assert torch.allclose(proj @ proj.T, torch.eye(16), atol=1e-4), "rows are orthonormal"
    info = dp.caption_information(tokens, mask, proj)
    assert info["pooled_cos_mean"] > 0.99 and info["retrieval_at_1"] > 0.99
    full = dp.caption_information(tokens, mask, torch.eye(dp.TEXT_DIM))
    assert full["pooled_cos_min"] > 0.999
    narrow = dp.caption_information(tokens, mask, proj[:2])
    assert narrow["pooled_cos_mean"] < info["pooled_cos_mean"], "the measure can fail"


def test_folded_export_equals_the_reduced_model(one_thread) -> None:
    torch.manual_seed(0)
    from studio.models.archs.text_unet import build_text_unet

    proj = torch.linalg.qr(torch.randn(dp.TEXT_DIM, 16))[0].T.contiguous()  # [16, 384]
    model = build_text_unet(dr.unet_config(dr.SIZES["tiny"], 16)).eval()
    folded = dr.fold_projection(model, proj)
    assert folded.config["unet"]["cross_attention_dim"] == dp.TEXT_DIM
    x, t = torch.randn(2, 3, 64, 64), torch.tensor([10, 700])
    full = torch.randn(2, 16, dp.TEXT_DIM)
    mask = torch.ones(2, 16, dtype=torch.bool)
    with torch.no_grad():
        want = model(x, t, full @ proj.T, mask)
        got = folded(x, t, full, mask)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_arguments() -> None:
    args = dr.build_parser().parse_args(["--out", "o", "--device", "cpu", "--minutes", "0.2"])
    assert args.minutes == 0.2 and args.size == "wide" and args.batch == 512 and not args.bf16
    assert args.pack == Path(".gpupack/device_pack.npz")
    with pytest.raises(SystemExit):
        dr.build_parser().parse_args(["--device", "cpu"])  # --out is required
    with pytest.raises(SystemExit):
        dr.build_parser().parse_args(["--out", "o", "--size", "huge"])


def _eval_nets(folder: Path) -> tuple[Path, Path]:
    """Random-init FD feature net and mini-CLIP files: the final evaluation's code path."""
    from studio.models.archs.mini_clip import MiniClip
    from studio.training.fid import FeatureNet

    torch.manual_seed(0)
    features, clip = folder / "features.safetensors", folder / "clip.safetensors"
    save_file(FeatureNet().state_dict(), str(features))
    save_file(MiniClip(widths=(4, 4, 4, 4)).state_dict(), str(clip))
    return features, clip


def test_two_step_cpu_run_exports_and_resumes(built, tmp_path) -> None:
    _, pack, _ = built
    out = tmp_path / "out"
    features, clip = _eval_nets(tmp_path)

    def run(steps: int, *extra: str) -> dict:
        argv = [
            *("--pack", str(pack), "--out", str(out), "--state-dir", str(tmp_path / "state")),
            *("--device", "cpu", "--size", "tiny", "--batch", "4", "--minutes", "5"),
            *("--max-steps", str(steps), "--log-every", "1", "--eval-n", "3", "--eval-steps", "2"),
            *("--wheels", str(tmp_path / "none"), "--features", str(features)),
            *extra,
        ]
        return dr.train(dr.build_parser().parse_args(argv))

    first = run(2, "--clip", str(clip), "--export-minutes", "0")  # an export after every step
    assert first["step"] == 2 and np.isfinite(first["val_loss_ema"])
    assert np.isfinite(first["fd_samples_vs_val"]) and first["fd_n"] == 2
    assert 0.0 <= first["r_precision_generated"] <= 1.0
    from studio.models.text_diffusion import TextDiffusion

    backend = TextDiffusion.load(out / dr.EXPORT_NAME)  # an ordinary 384-d studio-text2img file
    assert backend.model.config["unet"]["cross_attention_dim"] == dp.TEXT_DIM
    assert backend.metadata["steps"] == "2"
    second = run(3, "--bf16")  # the device's autocast path, resumed from the fp32 run
    assert second["step"] == 3
    log = (out / "log.txt").read_text()
    assert "resumed at step 2" in log and "export at step 1 " in log
    assert (out / "samples.png").is_file() and json.loads((out / "eval.json").read_text())
