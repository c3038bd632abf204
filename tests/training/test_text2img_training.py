"""The text-to-image training script on a tiny synthetic pack: a few steps, an exported EMA file
that the backend loads, resuming where it stopped, and captions that forbid flips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from studio.models.archs.text_unet import read_text_unet, tiny_config
from studio.training import train_text2img as t2i


def make_pack(root: Path) -> Path:
    rng = np.random.default_rng(0)
    texts = ["", "a red apple", "arrow pointing left", "a cat", "a blue car"]
    m = len(texts)
    mask = torch.zeros(m, 16, dtype=torch.uint8)
    mask[:, :4] = 1
    bank = {
        "tokens": (torch.randn(m, 16, 384) * mask[..., None]).half(),
        "mask": mask,
        "pooled": torch.randn(m, 384).half(),
    }
    root.mkdir(parents=True)
    save_file(bank, str(root / "captions.safetensors"))
    (root / "captions.json").write_text(json.dumps(texts))
    for split, n in (("train", 12), ("val", 4)):
        ids = np.full((n, 3), -1, np.int32)
        ids[:, 0] = rng.integers(1, m, n)
        ids[0, :2] = [1, 2]  # one image has a caption a mirror image would contradict
        ids[1, :2] = [1, 3]
        images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        np.savez(root / f"{split}.npz", images=images, caption_ids=ids, canonical=ids[:, 0])
    return root


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(t2i, "DEFAULT_CONFIG", tiny_config())
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _args(pack: Path, runs: Path, export: Path, steps: int) -> list[str]:
    return [
        *("--data", str(pack), "--runs", str(runs), "--export", str(export)),
        *("--steps", str(steps), "--batch", "4", "--eval-every", "2", "--log-every", "1"),
        *("--threads", "1", "--warmup", "1"),
    ]


def test_train_export_and_resume(tmp_path, tiny) -> None:
    pack = make_pack(tmp_path / "pack")
    export = tmp_path / "t2i.safetensors"
    first = t2i.train(t2i.build_parser().parse_args(_args(pack, tmp_path / "runs", export, 3)))
    assert first["step"] == 3
    assert all(np.isfinite(h["val_loss_ema"]) for h in first["history"])
    sd, meta = read_text_unet(export)
    assert meta["steps"] == "3" and all(v.dtype == torch.float16 for v in sd.values())

    from studio.models.text_diffusion import TextDiffusion

    TextDiffusion.load(export)  # the exported EMA file is what the backend reads
    state = torch.load(tmp_path / "runs/text2img/state.pt", weights_only=True)
    assert state["step"] == 3
    second = t2i.train(t2i.build_parser().parse_args(_args(pack, tmp_path / "runs", export, 5)))
    assert second["step"] == 5
    log = (tmp_path / "runs/text2img/log.txt").read_text()
    assert "resumed at step 3" in log


def test_flips_only_where_the_captions_allow(tmp_path) -> None:
    pack = make_pack(tmp_path / "pack")
    train, _, _ = t2i.load_pack(pack)
    assert not train.flip_ok[0], "'arrow pointing left' must never be mirrored"
    assert train.flip_ok[1]


def test_caption_dropout_uses_the_empty_caption(tmp_path) -> None:
    train, _, _ = t2i.load_pack(make_pack(tmp_path / "pack"))
    rng = np.random.default_rng(0)
    idx = np.zeros(2000, np.int64)
    caps = train.pick_captions(idx, rng, drop=0.1)
    assert set(np.unique(caps)) == {0, 1, 2}
    assert 0.07 < (caps == 0).mean() < 0.13
