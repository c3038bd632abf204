"""Device choice: CPU here, STUDIO_DEVICE overrides; a bad argument is a clear error, a bad
environment value one warning and the default."""

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


@pytest.mark.parametrize("value", ["abc", "0", "-3", "4.5", "99999"])
def test_a_bad_thread_count_in_the_environment_warns_once_and_uses_the_default(
    monkeypatch, capsys, value
) -> None:
    from studio.engine import device as device_module

    before = torch.get_num_threads()
    monkeypatch.setattr(device_module, "_warned", set())
    monkeypatch.setenv("STUDIO_THREADS", value)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    try:
        assert configure_cpu_threads(interactive=True) == 3
        assert configure_cpu_threads(interactive=True) == 3
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"studio: warning: STUDIO_THREADS={value!r} is not a whole number from 1 to 1024; using 3"
    ]


def test_a_good_thread_count_in_the_environment_is_used(monkeypatch, capsys) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("STUDIO_THREADS", " 2 ")
    try:
        assert configure_cpu_threads(interactive=True) == 2
    finally:
        torch.set_num_threads(before)
    assert capsys.readouterr().err == ""


def test_a_bad_device_or_precision_in_the_environment_warns_and_falls_back(
    monkeypatch, capsys
) -> None:
    from studio.engine import device as device_module
    from studio.engine.device import env_precision

    monkeypatch.setattr(device_module, "_warned", set())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("STUDIO_DEVICE", "toaster")
    assert choose_device().type in ("mps", "cpu")
    monkeypatch.setenv("STUDIO_DEVICE", "cuda")
    assert choose_device().type in ("mps", "cpu")
    monkeypatch.setenv("STUDIO_DEVICE", "meta")
    assert choose_device().type in ("mps", "cpu")
    monkeypatch.setenv("STUDIO_PRECISION", "fp8")
    assert env_precision() == ""
    monkeypatch.setenv("STUDIO_PRECISION", "BF16")
    assert env_precision() == "bf16"
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "studio: warning: STUDIO_DEVICE=toaster: not a device (use cpu, cuda or mps); "
        "using the automatic choice",
        "studio: warning: STUDIO_DEVICE=cuda: CUDA is not available on this machine; "
        "using the automatic choice",
        "studio: warning: STUDIO_DEVICE=meta: not a device (use cpu, cuda or mps); "
        "using the automatic choice",
        "studio: warning: STUDIO_PRECISION='fp8' is not fp32 or bf16; using the automatic choice",
    ]
