"""Device choice: CPU here, STUDIO_DEVICE overrides, bad values are clear errors."""

from __future__ import annotations

import pytest
import torch

from studio.engine.device import choose_device, configure_cpu_threads, describe
from studio.errors import StudioError


def test_cpu_override_and_description(monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    device = choose_device()
    assert device == torch.device("cpu")
    info = describe(device)
    assert info.memory_budget > 0 and "CPU" in info.name


def test_automatic_choice_prefers_cuda_then_mps(monkeypatch) -> None:
    monkeypatch.delenv("STUDIO_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device().type in ("mps", "cpu")


def test_unavailable_device_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(StudioError, match="CUDA is not available"):
        choose_device("cuda")
    with pytest.raises(StudioError, match="not a device"):
        choose_device("toaster")


def test_interactive_leaves_a_core_for_the_ui(monkeypatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.delenv("STUDIO_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    try:
        assert configure_cpu_threads(interactive=True) == 3
        assert configure_cpu_threads(interactive=False) == 4
    finally:
        torch.set_num_threads(before)
