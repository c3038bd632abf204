"""Every connection refused: for tests that show a model loads and runs without the network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


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
