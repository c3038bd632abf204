"""The miniature CLIP: weights and caption bank round-trip through one file, and Describe ranks
the bank by the image's vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from studio.errors import BadInputError
from studio.models.archs.mini_clip import MiniClip, MiniClipArch, pack_texts, unpack_texts
from studio.models.describe import describe, prepare
from studio.models.loading import load_weights

CAPTIONS = ["red apple", "café ☕", "grinning face", "", "a blue whale"]


def tiny_clip(seed: int = 0) -> MiniClip:
    torch.manual_seed(seed)
    model = MiniClip((4, 8, 8, 8), dim=16)
    with torch.no_grad():
        model.text_proj.weight.add_(0.1 * torch.randn(16, 16))
    return model.eval()


def save_clip(model: MiniClip, path: Path) -> Path:
    state = {k: v.contiguous() for k, v in model.state_dict().items()} | model.bank_state()
    save_file(state, str(path))
    return path


def picture(seed: int, h: int = 40, w: int = 56, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def test_texts_pack_and_unpack_exactly() -> None:
    packed = pack_texts(CAPTIONS)
    assert packed["bank.offsets"].shape == (len(CAPTIONS) + 1,)
    assert unpack_texts(packed["bank.text"], packed["bank.offsets"]) == CAPTIONS


def test_damaged_offsets_are_refused() -> None:
    packed = pack_texts(CAPTIONS)
    offsets = packed["bank.offsets"].clone()
    offsets[2] = offsets[3] + 1
    with pytest.raises(ValueError, match="offsets"):
        unpack_texts(packed["bank.text"], offsets)


def test_weights_and_bank_round_trip_through_a_file(tmp_path) -> None:
    model = tiny_clip()
    bank = F.normalize(torch.randn(len(CAPTIONS), 16), dim=1)
    model.attach_bank(CAPTIONS, bank)
    loaded = load_weights(save_clip(model, tmp_path / "clip.safetensors"))
    assert loaded.arch_id == MiniClipArch.id
    clip = loaded.module
    assert isinstance(clip, MiniClip) and clip.widths == (4, 8, 8, 8)
    assert clip.bank_captions == CAPTIONS
    # the bank is stored in fp16: vectors within fp16 rounding
    torch.testing.assert_close(clip.bank_embeddings, bank, atol=1e-3, rtol=0)
    x, t = torch.rand(3, 3, 64, 64), torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(clip.encode_image(x), model.encode_image(x))
        torch.testing.assert_close(clip.encode_text(t), model.encode_text(t))


def test_vectors_are_unit_norm_and_independent_of_the_batch() -> None:
    model = tiny_clip()
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        batch = model.encode_image(x)
        alone = model.encode_image(x[2:3])
    torch.testing.assert_close(batch.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(batch[2:3], alone, atol=1e-5, rtol=0)


def test_describe_ranks_the_caption_equal_to_the_image_vector_first() -> None:
    model = tiny_clip()
    image = picture(1)
    with torch.no_grad():
        vector = model.encode_image(prepare(image))[0]
    others = F.normalize(torch.randn(len(CAPTIONS), 16), dim=1)
    others[3] = vector
    model.attach_bank(CAPTIONS, others)
    top = describe(model, image, top_k=3)
    assert top[0][0] == CAPTIONS[3]
    assert top[0][1] == pytest.approx(1.0, abs=1e-5)
    scores = [s for _, s in top]
    assert scores == sorted(scores, reverse=True) and len(top) == 3


def test_transparent_pixels_are_white_and_pictures_are_padded_square() -> None:
    clear = np.zeros((10, 30, 4), np.uint8)  # black but fully transparent
    x = prepare(clear)
    assert x.shape == (1, 3, 64, 64)
    torch.testing.assert_close(x, torch.ones_like(x))
    tall = np.zeros((64, 16, 3), np.uint8)  # black strip: white padding left and right
    y = prepare(tall)[0]
    assert float(y[:, :, 32].max()) < 0.05 and float(y[:, :, 0].min()) > 0.95


def test_describe_refuses_bad_requests() -> None:
    model = tiny_clip()
    with pytest.raises(BadInputError, match="no caption bank"):
        describe(model, picture(0))
    model.attach_bank(CAPTIONS, F.normalize(torch.randn(len(CAPTIONS), 16), dim=1))
    with pytest.raises(BadInputError, match="top"):
        describe(model, picture(0), top_k=0)
    with pytest.raises(BadInputError, match="empty"):
        describe(model, np.zeros((0, 5, 3), np.uint8))
    assert len(describe(model, picture(0), top_k=50)) == len(CAPTIONS)
