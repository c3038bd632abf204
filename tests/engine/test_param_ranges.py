"""Every numeric task parameter has a stated range; a value outside it is refused at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.engine.jobs import (
    InpaintParams,
    JobRequest,
    OutpaintParams,
    StylizeParams,
    UpscaleParams,
)
from studio.engine.messages import JobFailed
from studio.engine.runner import JobRunner
from studio.engine.tasks.generate import GenerateParams
from studio.engine.tasks.inpaint import margins_for_aspect, parse_aspect
from studio.errors import BadInputError

NAN, INF = math.nan, math.inf

REFUSED = [
    (UpscaleParams, {"scale": 0}, "scale must be between 0.01 and 16"),
    (UpscaleParams, {"scale": NAN}, "scale must be between 0.01 and 16, got nan"),
    (UpscaleParams, {"scale": 17}, "scale must be between 0.01 and 16"),
    (UpscaleParams, {"target_width": 0}, "width must be between 1 and 65536 px"),
    (UpscaleParams, {"tile": 1}, "tile must be 0 (no tiling) or between 16 and 16384 px, got 1"),
    (UpscaleParams, {"tile": -5}, "tile must be 0 (no tiling) or between 16 and 16384 px"),
    (InpaintParams, {"grow": -1000}, "grow must be between -256 and 256 px, got -1000"),
    (InpaintParams, {"feather": 100000}, "feather must be between 0 and 256 px, got 100000"),
    (InpaintParams, {"padding": -1}, "padding must be between 0 and 1024 px"),
    (InpaintParams, {"max_side": 10}, "max side must be 0 (automatic) or between 64 and 8192"),
    (InpaintParams, {"seed": -1}, "seed must be between 0 and 4294967295, got -1"),
    (OutpaintParams, {"right": 100000}, "right must be between 0 and 4096 px"),
    (OutpaintParams, {"left": -3}, "left must be between 0 and 4096 px"),
    (OutpaintParams, {"feather": -1}, "feather must be between 0 and 256 px"),
    (StylizeParams, {"strength": 1.5}, "strength must be between 0 and 1, got 1.5"),
    (StylizeParams, {"strength": NAN}, "strength must be between 0 and 1"),
    (StylizeParams, {"resolution": 5}, "resolution must be 0 (full size) or between 64 and"),
    (StylizeParams, {"tile": 3}, "tile must be 0 (no tiling) or between 16 and 16384 px"),
    (StylizeParams, {"feather": 999}, "feather must be between 0 and 256 px"),
    (StylizeParams, {"mix": (("starry-night", NAN),)}, "'starry-night' must be between 0 and 1"),
    (StylizeParams, {"mix": (("copper", INF),)}, "'copper' must be between 0 and 1, got inf"),
    (GenerateParams, {"count": 0}, "count must be between 1 and 256"),
    (GenerateParams, {"seed": -1}, "seed must be between 0 and"),
    (GenerateParams, {"seed_b": -4}, "the seed to interpolate to must be between 0 and"),
    (GenerateParams, {"truncation": NAN}, "truncation must be in (0, 2]"),
    (GenerateParams, {"strength": -1.0}, "strength must be between 0 and 3"),
    (GenerateParams, {"out_size": 5}, "size must be between 16 and 1024 px"),
]


@pytest.mark.parametrize(("cls", "values", "message"), REFUSED)
def test_out_of_range_values_are_refused_with_the_range(cls, values, message) -> None:
    with pytest.raises(BadInputError) as caught:
        cls(**values)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (UpscaleParams, {"scale": None, "tile": 0}),
        (UpscaleParams, {"scale": 16, "tile": 16, "target_width": 65536}),
        (InpaintParams, {"grow": -256, "feather": 256, "padding": 0, "max_side": 0}),
        (OutpaintParams, {"left": 4096, "feather": 0, "seed": 2**32 - 1}),
        (StylizeParams, {"strength": 0.0, "resolution": 0, "tile": None, "mix": (("copper", 1),)}),
        (GenerateParams, {"count": 256, "truncation": 2.0, "strength": 3.0, "out_size": 16}),
    ],
)
def test_the_ends_of_each_range_are_accepted(cls, values) -> None:
    cls(**values)


def test_defaults_are_valid() -> None:
    for cls in (UpscaleParams, InpaintParams, OutpaintParams, StylizeParams, GenerateParams):
        cls()


def test_a_shrink_that_erases_the_mask_is_refused_not_a_silent_no_op(photo) -> None:
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[10:20, 10:20] = 1  # 10 px wide: shrinking it by 8 px leaves nothing
    request = JobRequest(InpaintParams("telea", grow=-8), photo, mask=mask)
    out = list(JobRunner().run(request))[-1]
    assert isinstance(out, JobFailed) and out.kind == "bad_input"
    assert "shrinking the mask by 8 px leaves nothing to fill" in out.message


@pytest.mark.parametrize("text", ["nan", "inf", "-2", "0", "16:0", "wide"])
def test_aspect_ratios_must_be_positive_finite_numbers(text) -> None:
    with pytest.raises(BadInputError, match="is not an aspect ratio"):
        parse_aspect(text)


def test_an_aspect_that_needs_too_wide_a_margin_says_so() -> None:
    with pytest.raises(BadInputError, match="outpaint adds at most 4096 px on a side"):
        margins_for_aspect(50, 40, 1000.0)
