"""Device choice: CPU here, the configured device wins; a bad explicit name is a clear error, a
bad value from the environment one warning and the automatic choice."""

from __future__ import annotations

import pytest
import torch

from studio.engine import config as config_module
from studio.engine.device import choose_device, configure_cpu_threads, describe
from studio.errors import StudioError


def test_cpu_choice_and_description() -> None:
    device = choose_device("cpu")
    assert device == torch.device("cpu")
    info = describe(device)
    assert info.memory_budget > 0 and "CPU" in info.name
    assert describe(device, 64 << 20).memory_budget == 64 << 20


def test_automatic_choice_prefers_cuda_then_mps(monkeypatch) -> None:
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


def test_a_device_from_the_environment_that_is_missing_warns_and_falls_back(
    monkeypatch, capsys
) -> None:
    monkeypatch.setattr(config_module, "_warned", set())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("cuda", strict=False).type in ("mps", "cpu")
    assert choose_device("cuda", strict=False).type in ("mps", "cpu")
    assert capsys.readouterr().err.splitlines() == [
        "studio: warning: device=cuda: CUDA is not available on this machine; "
        "using the automatic choice"
    ]


def test_thread_count_is_set() -> None:
    before = torch.get_num_threads()
    try:
        assert configure_cpu_threads(1) == 1
        assert configure_cpu_threads(0) == 1  # never zero threads
    finally:
        torch.set_num_threads(before)
