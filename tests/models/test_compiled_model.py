"""torch.compile'd image models: same pixels as eager, and a clean fallback when compiling fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.models.arch import LoadedModel
from studio.models.archs.srvgg import SRVGGNetCompact
from studio.models.descriptor import ImageModel


def tiny_loaded() -> LoadedModel:
    torch.manual_seed(0)
    net = SRVGGNetCompact(3, 3, nf=8, num_conv=2, scale=2)
    return LoadedModel(module=net, arch_id="srvgg", scale=2, in_channels=3, out_channels=3)


def test_compiled_model_matches_eager() -> None:
    tile = np.random.default_rng(1).random((24, 20, 3), dtype=np.float32)
    eager = ImageModel(tiny_loaded(), torch.device("cpu"))
    compiled = ImageModel(tiny_loaded(), torch.device("cpu"), compiled=True)
    assert compiled.compiled and not eager.compiled
    out = compiled(tile)
    assert compiled.compiled, "compilation worked, so it is still in use"
    np.testing.assert_allclose(out, eager(tile), atol=1e-4)
    assert out.shape == (48, 40, 3)


def test_a_compiler_failure_falls_back_to_eager(monkeypatch, caplog) -> None:
    def broken_compile(module, **_kwargs):
        def run(_x):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    tile = np.random.default_rng(2).random((16, 16, 3), dtype=np.float32)
    model = ImageModel(tiny_loaded(), torch.device("cpu"), compiled=True)
    with caplog.at_level("WARNING"):
        out = model(tile)
    assert not model.compiled and "no C++ compiler" in caplog.text
    np.testing.assert_allclose(out, ImageModel(tiny_loaded(), torch.device("cpu"))(tile), atol=0)


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("on", True), ("", False), ("0", False), ("auto", False)]
)
def test_the_engine_compiles_only_when_asked(monkeypatch, value, expected) -> None:
    """Loading compiles only under compile="on" (STUDIO_COMPILE=1 / --compile); "auto" loads
    eagerly and leaves compiling to the measured choice of :meth:`TaskContext.tuned`."""
    from studio.engine.cache import ModelCache
    from studio.engine.config import EngineConfig
    from studio.engine.device import describe
    from studio.engine.jobs import CancelToken
    from studio.engine.tasks.context import TaskContext
    from studio.models.registry import get_model

    config = EngineConfig.from_environment({"STUDIO_COMPILE": value})
    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append(kw) or module)
    ctx = TaskContext(CancelToken(), describe(torch.device("cpu")), ModelCache(), config)
    gen = ctx.load_model(get_model("studio-photo-x2", "upscale"))
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        model = stop.value
    assert isinstance(model, ImageModel) and bool(calls) is expected


def test_user_weight_files_are_compiled_too(monkeypatch, tmp_path) -> None:
    from safetensors.torch import save_file

    from studio.engine.cache import ModelCache
    from studio.engine.config import EngineConfig
    from studio.engine.device import describe
    from studio.engine.jobs import CancelToken
    from studio.engine.tasks.context import TaskContext

    path = tmp_path / "mine.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_loaded().module.state_dict().items()}, path)
    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: calls.append(kw) or module)
    config = EngineConfig(compile="on")
    ctx = TaskContext(CancelToken(), describe(torch.device("cpu")), ModelCache(), config)
    gen = ctx.load_user_model(path)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        model = stop.value
    assert isinstance(model, ImageModel) and calls, "torch.compile was asked for"
