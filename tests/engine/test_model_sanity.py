"""Models that misbehave: a 1x restoration net, NaN weights, overflowing outputs, wrong shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from studio.engine.jobs import JobRequest, UpscaleParams
from studio.engine.messages import JobFailed, JobFinished, TileReady
from studio.engine.runner import JobRunner
from studio.errors import BadWeightsError
from studio.models.archs.srvgg import SRVGGNetCompact
from studio.models.loading import build_model


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner()


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def _srvgg_file(path: Path, scale: int = 1, edit=None) -> Path:
    torch.manual_seed(0)
    state = _state(SRVGGNetCompact(nf=8, num_conv=2, scale=scale))
    if edit is not None:
        edit(state)
    save_file(state, path)
    return path


def _run(runner: JobRunner, params: UpscaleParams, image: np.ndarray) -> list:
    return list(runner.run(JobRequest(params, image)))


def test_a_1x_restoration_model_keeps_the_size_and_tiles_without_seams(
    runner, tmp_path: Path, photo
) -> None:
    """A de-JPEG/denoise net (scale 1) used to fail with ZeroDivisionError."""
    path = str(_srvgg_file(tmp_path / "dejpeg-1x.safetensors"))
    tiled = _run(runner, UpscaleParams(path, None, tile=32), photo)
    done = tiled[-1]
    assert isinstance(done, JobFinished), getattr(done, "message", "")
    assert done.image.shape == photo.shape, "scale None = the model's own scale: 1"
    assert sum(isinstance(m, TileReady) for m in tiled) == 12, "96x128 in 32 px tiles"
    assert not np.array_equal(done.image, photo), "the random net changed the pixels"
    whole = _run(runner, UpscaleParams(path, 1, tile=0), photo)[-1]
    diff = np.abs(whole.image.astype(int) - done.image.astype(int))
    assert diff.max() <= 1, f"tiled differs from untiled by {diff.max()}/255"


def test_a_1x_model_then_resampling_reaches_a_larger_scale(runner, tmp_path: Path, photo) -> None:
    path = str(_srvgg_file(tmp_path / "denoise-1x.safetensors"))
    done = _run(runner, UpscaleParams(path, 2, tile=64), photo)[-1]
    assert isinstance(done, JobFinished), getattr(done, "message", "")
    assert done.image.shape == (192, 256, 3)
    assert done.info["plan"].startswith("256x192")


def test_nan_weights_are_refused_at_load_instead_of_painting_black(
    runner, tmp_path: Path, photo
) -> None:
    def poison(state):
        state["body.2.weight"][0, 0, 1, 1] = float("nan")

    path = str(_srvgg_file(tmp_path / "nan.safetensors", scale=2, edit=poison))
    out = _run(runner, UpscaleParams(path, 2, tile=0), photo)[-1]
    assert isinstance(out, JobFailed), "NaN weights used to finish with a black image"
    assert out.kind == "bad_weights"
    assert "body.2.weight" in out.message and "NaN or infinity" in out.message


def test_infinite_weights_in_a_torch_file_are_refused_too(runner, tmp_path: Path, photo) -> None:
    torch.manual_seed(0)
    state = _state(SRVGGNetCompact(nf=8, num_conv=2, scale=2))
    state["body.0.bias"][3] = float("inf")
    torch.save(state, tmp_path / "inf.pth")
    out = _run(runner, UpscaleParams(str(tmp_path / "inf.pth"), 2), photo)[-1]
    assert isinstance(out, JobFailed) and out.kind == "bad_weights"
    assert "body.0.bias" in out.message


def test_an_output_that_overflows_is_a_model_error_not_a_black_image(
    runner, tmp_path: Path, photo
) -> None:
    """Finite but huge weights overflow float32 inside the net: inf, then NaN."""

    def inflate(state):
        for key, tensor in state.items():
            if key.endswith("weight") and tensor.ndim == 4:
                tensor.fill_(1e20)

    path = str(_srvgg_file(tmp_path / "huge.safetensors", scale=2, edit=inflate))
    messages = _run(runner, UpscaleParams(path, 2, tile=48), photo)
    out = messages[-1]
    assert isinstance(out, JobFailed), "an overflowing net used to finish with a flat image"
    assert out.kind == "bad_output" and "NaN or infinity" in out.message
    assert not any(isinstance(m, TileReady) for m in messages), "no black tile was streamed"


def _mismatched_state() -> dict[str, torch.Tensor]:
    """SRVGG with 16 inner convs whose input channels disagree with the first conv's width."""
    torch.manual_seed(0)
    state = _state(SRVGGNetCompact(nf=8, num_conv=16, scale=2))
    for i in range(2, 2 * 16 + 1, 2):
        state[f"body.{i}.weight"] = torch.zeros(8, 6, 3, 3)
    return state


def test_wrong_shapes_give_one_readable_paragraph() -> None:
    with pytest.raises(BadWeightsError) as caught:
        build_model(_mismatched_state(), "odd.safetensors")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300, message
    assert message.startswith("odd.safetensors: looks like SRVGGNetCompact but does not load")
    assert "body.2.weight is [8, 6, 3, 3] in the file" in message
    assert "expects [8, 8, 3, 3]" in message and "(and 15 more mismatches)" in message


def test_wrong_shapes_through_the_engine_are_one_line(runner, tmp_path: Path, photo) -> None:
    save_file(_mismatched_state(), tmp_path / "odd.safetensors")
    out = _run(runner, UpscaleParams(str(tmp_path / "odd.safetensors"), 2), photo)[-1]
    assert isinstance(out, JobFailed) and out.kind == "bad_weights"
    assert "\n" not in out.message and "15 more" in out.message


def test_missing_and_unexpected_tensors_are_counted_too() -> None:
    from studio.models.loading import load_problem

    torch.manual_seed(0)
    module = SRVGGNetCompact(nf=8, num_conv=1, scale=2)
    state = _state(module)
    del state["body.3.weight"]
    state["body.9.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as caught:
        module.load_state_dict(state)
    text = load_problem(caught.value)
    assert text == "tensor body.3.weight is missing from the file (and 1 more mismatch)"


def test_the_output_check_is_exact() -> None:
    from studio.errors import ModelOutputError
    from studio.models.arch import check_finite_output

    check_finite_output(torch.full((1, 3, 64, 64), 3e38), "net")  # a float32 sum would overflow
    check_finite_output(torch.rand(1, 3, 8, 8, dtype=torch.float16), "net")
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = torch.rand(1, 3, 16, 16)
        y[0, 1, 5, 7] = bad
        with pytest.raises(ModelOutputError, match="net produced invalid values"):
            check_finite_output(y, "net")
    half = torch.zeros(1, 3, 4, 4, dtype=torch.float16)
    half[0, 0, 0, 0] = float("inf")
    with pytest.raises(ModelOutputError, match="STUDIO_PRECISION=fp32"):
        check_finite_output(half, "net")
