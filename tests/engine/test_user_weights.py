"""Artists' own weight files through the engine: detected, run, or refused with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from studio.engine.jobs import InpaintParams, JobRequest, UpscaleParams
from studio.engine.messages import JobFailed, JobFinished, ModelLoading
from studio.engine.runner import JobRunner


def _save(module: torch.nn.Module, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, path)
    return path


def test_spandrel_sr_file_upscales_with_its_detected_scale(tmp_path: Path, photo) -> None:
    from spandrel.architectures.SPAN import SPAN

    torch.manual_seed(0)
    path = tmp_path / "span.pth"  # a weights-only pickle, as most community files are
    torch.save(SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2).state_dict(), path)
    messages = list(JobRunner().run(JobRequest(UpscaleParams(str(path), 3, tile=48), photo)))
    assert any(isinstance(m, ModelLoading) for m in messages)
    out = messages[-1]
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    assert out.image.shape == (288, 384, 3)  # x2 model twice, then Lanczos down to x3


def test_our_inpaint_net_as_a_file_keeps_outside_pixels(tmp_path: Path, photo) -> None:
    from studio.models.archs.inpaint_unet import InpaintUNet

    torch.manual_seed(0)
    path = _save(InpaintUNet((8, 8, 16), blocks=1), tmp_path / "inpaint.safetensors")
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[20:40, 30:61] = 1  # odd sizes: the wrapper pads to the size multiple
    out = list(JobRunner().run(JobRequest(InpaintParams(str(path)), photo, mask=mask)))[-1]
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    np.testing.assert_array_equal(out.image[mask == 0], photo[mask == 0])


def test_a_lama_file_is_detected_and_fills_only_the_mask(tmp_path: Path, photo) -> None:
    """A (random-init) big-LaMa state dict, the layout of community LaMa checkpoints."""
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    path = _save(LaMa(in_nc=4), tmp_path / "big-lama.safetensors")  # image + mask in
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[30:52, 40:75] = 1
    params = InpaintParams(str(path), grow=0, feather=0)
    out = list(JobRunner().run(JobRequest(params, photo, mask=mask)))[-1]
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    np.testing.assert_array_equal(out.image[mask == 0], photo[mask == 0])
    assert not np.array_equal(out.image[mask > 0], photo[mask > 0])
    wrong = list(JobRunner().run(JobRequest(UpscaleParams(str(path), 2), photo)))[-1]
    assert isinstance(wrong, JobFailed) and "not an upscaler" in wrong.message


def test_an_upscaler_given_to_inpaint_is_refused(tmp_path: Path, photo) -> None:
    from studio.models.archs.srvgg import SRVGGNetCompact

    path = _save(SRVGGNetCompact(nf=4, num_conv=1, scale=2), tmp_path / "sr.safetensors")
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[5:9, 5:9] = 1
    out = list(JobRunner().run(JobRequest(InpaintParams(str(path)), photo, mask=mask)))[-1]
    assert isinstance(out, JobFailed) and "not an inpainting model" in out.message


def test_missing_user_file_is_a_clear_failure(tmp_path: Path, photo) -> None:
    out = list(JobRunner().run(JobRequest(UpscaleParams(str(tmp_path / "no.pth")), photo)))[-1]
    assert isinstance(out, JobFailed) and out.kind == "missing_model"


def test_a_mat_file_without_the_extra_package_is_refused_with_the_reason(
    tmp_path: Path, photo, monkeypatch
) -> None:
    from spandrel import MAIN_REGISTRY

    from studio.models import loading

    monkeypatch.setattr(loading, "_extra_registry", lambda: None)
    monkeypatch.setattr(loading, "_spandrel_registry", lambda: MAIN_REGISTRY)
    key = "synthesis.first_stage.conv_first.conv.resample_filter"
    path = tmp_path / "mat.safetensors"
    save_file({key: torch.ones(4, 4), "synthesis.other.weight": torch.zeros(3)}, path)
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[5:20, 5:20] = 1
    out = list(JobRunner().run(JobRequest(InpaintParams(str(path)), photo, mask=mask)))[-1]
    assert isinstance(out, JobFailed) and out.kind == "bad_weights"
    assert "MAT" in out.message and "pip install spandrel_extra_arches" in out.message


def test_a_mat_file_runs_at_its_native_square_size_and_fills_only_the_mask(
    tmp_path: Path, photo
) -> None:
    """MAT (spandrel_extra_arches, a dev-only dependency: non-commercial licence) needs square
    inputs that are multiples of 512: a 96x128 context is padded to 512x512 and cropped back."""
    from spandrel_extra_arches.architectures.MAT import MAT

    torch.manual_seed(0)
    path = _save(MAT(), tmp_path / "mat.safetensors")
    shapes: list[tuple[int, ...]] = []

    def record(module: torch.nn.Module, args: tuple) -> None:
        if type(module).__name__ == "MAT":
            shapes.append(tuple(args[0].shape))

    mask = np.zeros(photo.shape[:2], np.float32)
    mask[30:52, 40:75] = 1
    params = InpaintParams(str(path), grow=0, feather=0)
    hook = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        out = list(JobRunner().run(JobRequest(params, photo, mask=mask)))[-1]
    finally:
        hook.remove()
    assert isinstance(out, JobFinished), getattr(out, "message", "")
    assert shapes == [(1, 3, 512, 512)]
    np.testing.assert_array_equal(out.image[mask == 0], photo[mask == 0])
    assert not np.array_equal(out.image[mask > 0], photo[mask > 0])
