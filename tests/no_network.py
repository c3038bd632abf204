"""Every connection refused: for tests that show a model loads and runs without the network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch


class NetworkUsedError(AssertionError):
    """Raised by any attempt to connect while :func:`blocked_network` is active."""


def _refuse(*args: object, **kwargs: object) -> None:
    raise NetworkUsedError(f"tried to reach the network: {args!r}")


@contextmanager
def blocked_network() -> Iterator[None]:
    """``socket.connect``, ``connect_ex`` and ``create_connection`` raise while inside."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _refuse)
        mp.setattr(socket.socket, "connect_ex", _refuse)
        mp.setattr(socket, "create_connection", _refuse)
        yield


@contextmanager
def offline_on_one_thread() -> Iterator[None]:
    """:func:`blocked_network` with torch on one thread, restored after: tiny pipelines gain
    nothing from more threads, and on a busy machine waiting threads make them slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with blocked_network():
            yield
    finally:
        torch.set_num_threads(threads)
