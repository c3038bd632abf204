"""The one pixels module: unit floats, rounding quantisation, 16 -> 8 bit, input checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio import pixels
from studio.errors import BadInputError
from studio.export_metadata import ExportOptions
from studio.imageio import read_mask, write_image

STUDIO = Path(pixels.__file__).resolve().parent
#: 16-bit values and the 8-bit level nearest to each (v / 257 rounded)
SIXTEEN = np.array([0, 128, 129, 32767, 32896, 32897, 65406, 65535], np.uint16)
EIGHT = np.array([0, 0, 1, 127, 128, 128, 254, 255], np.uint8)


def _rgb16() -> np.ndarray:
    return np.repeat(SIXTEEN[None, :, None], 3, axis=2)


def test_to_unit_matches_division_exactly_for_both_depths() -> None:
    for dtype in (np.uint8, np.uint16):
        a = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(-1, 1, 1)
        x = pixels.to_unit(a)
        assert x.dtype == np.float32 and x.shape == a.shape
        assert np.array_equal(x, a.astype(np.float32) / np.float32(np.iinfo(dtype).max))
        assert x.min() == 0.0 and x.max() == 1.0


def test_quantize_rounds_to_the_nearest_level_and_clips() -> None:
    x = np.array([-0.5, 0.0, 0.49 / 255, 0.51 / 255, 127.5 / 255, 0.999, 1.0, 2.0], np.float32)
    assert pixels.quantize(x, np.uint8).tolist() == [0, 0, 0, 1, 128, 255, 255, 255]
    assert pixels.quantize(np.float32([0.5]), np.uint16).tolist() == [32768]


def test_a_round_trip_through_unit_floats_is_lossless() -> None:
    for dtype in (np.uint8, np.uint16):
        a = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
        assert np.array_equal(pixels.quantize(pixels.to_unit(a), dtype), a)


def test_to_8bit_rounds_instead_of_truncating() -> None:
    assert pixels.to_8bit(SIXTEEN).tolist() == EIGHT.tolist()
    every = np.arange(65536, dtype=np.uint16)
    expected = np.floor(every / 257.0 + 0.5).astype(np.uint8)
    assert np.array_equal(pixels.to_8bit(every), expected), "the nearest 8-bit level"
    u8 = np.arange(256, dtype=np.uint8)
    assert pixels.to_8bit(u8) is u8


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((4, 4), np.uint8), "RGB or RGBA"),
        (np.zeros((4, 4, 2), np.uint8), "RGB or RGBA"),
        (np.zeros((4, 4, 3), np.float32), "8- or 16-bit"),
        (np.zeros((4, 4, 3), np.int16), "8- or 16-bit"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "pixels"),
    ],
)
def test_check_image_gives_one_clear_error(bad, words) -> None:
    with pytest.raises(BadInputError, match=words):
        pixels.check_image(bad)


def test_check_image_accepts_rgb_and_rgba_at_both_depths() -> None:
    for dtype in (np.uint8, np.uint16):
        for c in (3, 4):
            pixels.check_image(np.zeros((2, 3, c), dtype))


def test_writing_16_bit_pixels_to_8_bit_files_rounds(tmp_path) -> None:
    bmp = tmp_path / "plain.bmp"
    write_image(bmp, _rgb16())
    assert np.asarray(Image.open(bmp))[0, :, 0].tolist() == EIGHT.tolist()
    png = tmp_path / "export.png"
    write_image(png, _rgb16(), options=ExportOptions(bit_depth=8))
    assert np.asarray(Image.open(png))[0, :, 0].tolist() == EIGHT.tolist()


def test_a_project_layer_from_16_bit_pixels_rounds() -> None:
    from studio.project_io import _rgba8

    assert _rgba8(_rgb16())[0, :, 0].tolist() == EIGHT.tolist()


def test_no_module_converts_16_to_8_bit_by_hand() -> None:
    """Every 16 -> 8 bit conversion goes through :func:`pixels.to_8bit` (the truncating
    ``* 255 // 65535`` was written in the editor's open and job-finish paths)."""
    pattern = re.compile(r"\*\s*255\s*(\+\s*\d+\s*)?\)?\s*//\s*(65535|np\.iinfo)|>>\s*8\b")
    offenders = [
        f"{path.relative_to(STUDIO.parent)}:{n}"
        for path in STUDIO.rglob("*.py")
        if path.name != "pixels.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"16 -> 8 bit by hand (use studio.pixels.to_8bit): {offenders}"


def test_masks_from_16_bit_files_use_the_same_unit_scale(tmp_path) -> None:
    from studio.imageio import write_image as write

    mask = np.zeros((2, 2, 4), np.uint16)
    mask[:, :, 3] = [[0, 65535], [32768, 65535]]
    write(tmp_path / "m.png", mask)
    read = read_mask(tmp_path / "m.png")
    assert read[0, 1] == 1.0 and read[1, 0] == pytest.approx(32768 / 65535)
