"""Loaded models on the engine thread, keyed by (model, device, dtype), evicted LRU by bytes."""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

DEFAULT_BUDGET_BYTES = 4 << 30


def module_nbytes(obj: Any) -> int:
    """Bytes held by the parameters and buffers of a torch module, or of an object's ``.module``
    (a model wrapper); 0 for anything else."""
    obj = getattr(obj, "module", obj)
    total = 0
    for getter in ("parameters", "buffers"):
        fn = getattr(obj, getter, None)
        if fn is None:
            continue
        total += sum(t.numel() * t.element_size() for t in fn())
    return total


@dataclass
class _Entry:
    value: Any
    nbytes: int


class ModelCache:
    """Least-recently-used cache with a byte budget. Not thread-safe: the engine thread owns it.

    A load that raises leaves the cache exactly as it was. An item larger than the whole budget
    is still returned (and cached alone) rather than refused: refusing would fail the job.
    """

    def __init__(
        self, budget_bytes: int = DEFAULT_BUDGET_BYTES, sizeof: Callable[[Any], int] = module_nbytes
    ) -> None:
        self.budget_bytes = budget_bytes
        self._sizeof = sizeof
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        return list(self._entries)

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value for ``key``, loading (and making room for) it on a miss."""
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key].value
        self.misses += 1
        value = load()
        size = self._sizeof(value)
        self._make_room(size)
        self._entries[key] = _Entry(value, size)
        return value

    def _make_room(self, incoming: int) -> None:
        evicted = False
        while self._entries and self.nbytes + incoming > self.budget_bytes:
            self._entries.popitem(last=False)
            self.evictions += 1
            evicted = True
        if evicted:  # a full collection costs ~10-50 ms: only when memory was let go
            gc.collect()

    def evict(self, key: Hashable) -> None:
        if self._entries.pop(key, None) is not None:
            gc.collect()

    def clear(self) -> None:
        self._entries.clear()
        gc.collect()
