"""Free-form hole masks: value set, coverage ranges, seeded determinism."""

from __future__ import annotations

import numpy as np
import pytest

from studio.training.masks import coverage, eval_mask, random_mask, random_masks


@pytest.mark.parametrize(("h", "w"), [(128, 128), (160, 96), (256, 256)])
def test_random_masks_are_binary_float32_within_the_coverage_range(h: int, w: int) -> None:
    rng = np.random.default_rng(0)
    covs = []
    for _ in range(60):
        m = random_mask(h, w, rng)
        assert m.shape == (h, w) and m.dtype == np.float32
        assert set(np.unique(m)) <= {0.0, 1.0}
        covs.append(coverage(m))
    assert min(covs) >= 0.05 and max(covs) <= 0.5
    # the range is used, not just one corner of it
    assert min(covs) < 0.15 and max(covs) > 0.4


def test_custom_coverage_range_and_invalid_range() -> None:
    rng = np.random.default_rng(1)
    covs = [coverage(random_mask(96, 96, rng, 0.2, 0.25)) for _ in range(30)]
    assert min(covs) >= 0.2 and max(covs) <= 0.25
    with pytest.raises(ValueError):
        random_mask(64, 64, rng, 0.5, 0.2)


def test_random_masks_are_reproducible_from_the_seed() -> None:
    a = random_masks(4, 64, 80, np.random.default_rng(7))
    b = random_masks(4, 64, 80, np.random.default_rng(7))
    c = random_masks(4, 64, 80, np.random.default_rng(8))
    assert a.shape == (4, 64, 80)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])


def test_eval_masks_cover_fifteen_percent_and_are_deterministic() -> None:
    covs = [coverage(eval_mask(256, 256, s)) for s in range(40)]
    assert min(covs) >= 0.13 and max(covs) <= 0.17
    assert abs(np.mean(covs) - 0.15) < 0.01
    assert np.array_equal(eval_mask(256, 256, 3), eval_mask(256, 256, 3))
    assert not np.array_equal(eval_mask(256, 256, 3), eval_mask(256, 256, 4))
    m = eval_mask(120, 200, 5, target=0.3, tol=0.03)
    assert m.shape == (120, 200) and 0.27 <= coverage(m) <= 0.33
