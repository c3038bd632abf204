"""Memory estimates from the image size alone: a job that cannot fit is refused up front."""

from __future__ import annotations

import pytest

from studio.engine.jobs import InpaintParams, OutpaintParams, StylizeParams, UpscaleParams
from studio.engine.tasks.preflight import ImageSize, available_memory, check_fits, job_bytes
from studio.errors import BadInputError

GIB = 2**30
HUGE = ImageSize(16384, 16384)


def test_available_memory_is_a_plausible_number() -> None:
    assert 16 * 2**20 < available_memory() < 2**50


def test_a_full_size_stylize_of_a_huge_image_is_refused_with_the_numbers() -> None:
    with pytest.raises(BadInputError) as caught:
        check_fits(StylizeParams(resolution=0), HUGE, 2 * GIB, decoding=True, available=16 * GIB)
    message = str(caught.value)
    assert message.startswith("stylize of a 16384x16384 image needs about")
    assert "16.0 GiB is free" in message


def test_small_jobs_fit_and_decoding_is_counted() -> None:
    small = ImageSize(1024, 768)
    for params in (StylizeParams(), InpaintParams(), OutpaintParams(right=64)):
        check_fits(params, small, 2 * GIB, decoding=True, available=1 * GIB)
    need = job_bytes(InpaintParams(), HUGE, 2 * GIB)
    check_fits(InpaintParams(), HUGE, 2 * GIB, available=need)
    with pytest.raises(BadInputError, match="inpaint of a 16384x16384 image"):
        check_fits(InpaintParams(), HUGE, 2 * GIB, decoding=True, available=need)


def test_upscales_keep_their_own_limits_before_decoding() -> None:
    with pytest.raises(BadInputError, match="the limit is"):
        check_fits(UpscaleParams("lanczos", 4), HUGE, 2 * GIB, available=1 << 50)
    with pytest.raises(BadInputError, match="does not fit in this machine's memory"):
        check_fits(UpscaleParams("lanczos", 2), HUGE, 2 * GIB, available=1 << 50)
    check_fits(UpscaleParams("lanczos", 2), ImageSize(2048, 2048), 2 * GIB, available=1 << 50)


def test_an_artists_file_is_estimated_without_loading_it(tmp_path) -> None:
    params = UpscaleParams(str(tmp_path / "not-read-yet.pth"), 4)
    with pytest.raises(BadInputError, match="the limit is"):
        check_fits(params, HUGE, 2 * GIB, available=1 << 50)
