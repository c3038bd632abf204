"""Upscale task: PIL parity tiled or not, any scale, alpha and 16-bit kept, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.engine.jobs import JobRequest, UpscaleParams
from studio.engine.messages import JobFailed, JobFinished
from studio.engine.runner import JobRunner


@pytest.fixture(scope="module")
def runner() -> JobRunner:
    return JobRunner()


def upscale(runner, image, **params) -> JobFinished | JobFailed:
    return list(runner.run(JobRequest(UpscaleParams(**params), image)))[-1]


@pytest.mark.parametrize("tile", [0, 32, 45])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lanczos_equals_pil_tiled_or_not(runner, photo, tile, scale) -> None:
    out = upscale(runner, photo, model="lanczos", scale=scale, tile=tile)
    h, w = photo.shape[:2]
    ref = np.asarray(Image.fromarray(photo).resize((w * scale, h * scale), Image.LANCZOS))
    assert isinstance(out, JobFinished)
    diff = np.abs(out.image.astype(int) - ref.astype(int))
    assert diff.max() <= 1, f"max difference {diff.max()}/255 against PIL (tile={tile})"


def test_bicubic_equals_pil(runner, photo) -> None:
    out = upscale(runner, photo, model="bicubic", scale=2, tile=40)
    ref = np.asarray(Image.fromarray(photo).resize((256, 192), Image.BICUBIC))
    assert np.abs(out.image.astype(int) - ref).max() <= 1


def test_fractional_scale_and_target_width(runner, photo) -> None:
    assert upscale(runner, photo, model="lanczos", scale=1.5).image.shape == (144, 192, 3)
    assert upscale(runner, photo, model="lanczos", target_width=300).image.shape == (225, 300, 3)


def test_alpha_is_upscaled_separately_and_kept(runner, photo) -> None:
    rgba = np.dstack([photo, np.tile(np.linspace(0, 255, 128).astype(np.uint8), (96, 1))])
    out = upscale(runner, rgba, model="lanczos", scale=2, tile=32).image
    assert out.shape == (192, 256, 4)
    ref_alpha = np.asarray(Image.fromarray(rgba[:, :, 3]).resize((256, 192), Image.LANCZOS))
    assert np.abs(out[:, :, 3].astype(int) - ref_alpha).max() <= 1


def test_sixteen_bit_in_sixteen_bit_out(runner) -> None:
    ramp = np.linspace(0, 65535, 64 * 48 * 3).reshape(48, 64, 3).astype(np.uint16)
    out = upscale(runner, ramp, model="lanczos", scale=2, tile=16).image
    assert out.dtype == np.uint16 and out.shape == (96, 128, 3)
    assert len(np.unique(out)) > 256, "16-bit precision was lost"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"model": "nope", "scale": 2}, "unknown upscale model 'nope'"),
        ({"model": "lanczos", "scale": 16, "target_width": 40000}, "the limit is"),
    ],
)
def test_bad_requests_fail_with_a_clear_message(runner, photo, params, fragment) -> None:
    out = upscale(runner, photo, **params)
    assert isinstance(out, JobFailed) and fragment in out.message
    assert out.kind in ("bad_input", "missing_model")


def test_out_of_range_parameters_are_refused_when_the_request_is_made() -> None:
    from studio.errors import BadInputError

    with pytest.raises(BadInputError, match=r"scale must be between 0\.01 and 16"):
        UpscaleParams("lanczos", 0)
