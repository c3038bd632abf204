"""Model cache: LRU by bytes, failed loads roll back, hits do not reload."""

from __future__ import annotations

import pytest

from studio.engine.cache import ModelCache


def test_lru_eviction_by_bytes() -> None:
    cache = ModelCache(budget_bytes=100, sizeof=lambda v: v)
    cache.get("a", lambda: 40)
    cache.get("b", lambda: 40)
    cache.get("a", lambda: pytest.fail("a was cached"))  # a becomes most recent
    cache.get("c", lambda: 40)  # evicts b, the least recently used
    assert cache.keys() == ["a", "c"] and cache.evictions == 1
    assert cache.hits == 1 and cache.misses == 3


def test_failed_load_leaves_the_cache_unchanged() -> None:
    cache = ModelCache(budget_bytes=100, sizeof=lambda v: v)
    cache.get("a", lambda: 60)

    def boom():
        raise RuntimeError("corrupt weights")

    with pytest.raises(RuntimeError):
        cache.get("b", boom)
    assert cache.keys() == ["a"] and cache.nbytes == 60


def test_item_larger_than_budget_is_still_served() -> None:
    cache = ModelCache(budget_bytes=10, sizeof=lambda v: v)
    assert cache.get("big", lambda: 50) == 50
    assert cache.keys() == ["big"]


def test_wrapped_torch_modules_are_sized_by_their_weights() -> None:
    import torch

    from studio.engine.cache import module_nbytes
    from studio.models.arch import LoadedModel
    from studio.models.descriptor import ImageModel

    conv = torch.nn.Conv2d(3, 8, 3)
    expected = (8 * 3 * 9 + 8) * 4
    assert module_nbytes(conv) == expected
    wrapped = ImageModel(LoadedModel(conv, "test"), torch.device("cpu"), torch.bfloat16)
    assert module_nbytes(wrapped) == expected // 2
