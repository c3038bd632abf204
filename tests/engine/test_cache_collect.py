"""The model cache runs a full garbage collection only when it lets memory go."""

from __future__ import annotations

import studio.engine.cache as cache_module
from studio.engine.cache import ModelCache


def test_collects_only_on_eviction_and_clear(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(cache_module.gc, "collect", lambda: calls.append(1) or 0)
    cache = ModelCache(budget_bytes=100, sizeof=lambda value: value)
    for key in range(3):  # misses that fit: no collection (it cost ~40 ms per miss)
        cache.get(key, lambda: 30)
    assert calls == []
    cache.get("big", lambda: 50)  # evicts the two oldest
    assert len(calls) == 1 and cache.evictions == 2
    cache.evict("missing")
    assert len(calls) == 1
    cache.evict("big")
    cache.clear()
    assert len(calls) == 3
