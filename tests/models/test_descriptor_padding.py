"""Padding rules of the model wrappers: the smallest accepted size, mirrored content."""

from __future__ import annotations

import numpy as np
import pytest

from studio.models.descriptor import pad_to_nchw, padded_size


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((100, 130, 8, 0, False), (104, 136)),  # multiple only
        ((96, 128, 512, 512, True), (512, 512)),  # MAT: square, at least 512
        ((600, 200, 512, 512, True), (1024, 1024)),
        ((64, 64, 1, 0, False), (64, 64)),
        ((10, 300, 8, 64, False), (64, 304)),
    ],
)
def test_padded_size(args: tuple, expected: tuple[int, int]) -> None:
    assert padded_size(*args) == expected


def test_pad_mirrors_any_amount_and_keeps_the_original_corner() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    x = pad_to_nchw(image, (9, 8))
    assert x.shape == (1, 3, 9, 8)
    back = x[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(back[:2, :3], image)
    np.testing.assert_array_equal(back[2:4, :3], image[::-1])  # mirrored, repeated past the size
    hole = pad_to_nchw(np.ones((2, 3, 1), np.float32), (4, 4), 0.0)
    assert hole.sum() == 6 and hole.shape == (1, 1, 4, 4)
