"""Image files: round trips keep pixels, bit depth and metadata; bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import BadInputError
from studio.imageio import read_image, write_image


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip(tmp_path: Path, ext: str) -> None:
    a = np.random.default_rng(0).integers(0, 65536, (20, 30, 4), dtype=np.uint16)
    write_image(tmp_path / f"a{ext}", a)
    b = read_image(tmp_path / f"a{ext}")
    assert b.pixels.dtype == np.uint16
    np.testing.assert_array_equal(b.pixels, a)


def test_png_metadata_survives(tmp_path: Path, photo) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    meta = {"text": {"Author": "me"}, "dpi": (300.0, 300.0), "icc_profile": icc}
    write_image(tmp_path / "m.png", photo, meta)
    back = read_image(tmp_path / "m.png")
    np.testing.assert_array_equal(back.pixels, photo)
    assert back.metadata["text"]["Author"] == "me"
    assert back.metadata["icc_profile"] == icc
    assert round(back.metadata["dpi"][0]) == 300


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    im.save(tmp_path / "o.jpg", exif=exif.tobytes())
    loaded = read_image(tmp_path / "o.jpg")
    assert loaded.pixels.shape[:2] == (40, 20)
    write_image(tmp_path / "o2.jpg", loaded.pixels, loaded.metadata)
    assert Image.open(tmp_path / "o2.jpg").getexif().get(0x0112) == 1


def test_jpeg_flattens_alpha_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    write_image(tmp_path / "t.jpg", rgba)
    assert np.asarray(Image.open(tmp_path / "t.jpg")).min() >= 250


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"plain text, not an image", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "damaged"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(BadInputError, match=fragment):
        read_image(tmp_path / "bad.png")


def test_too_large_is_refused_with_the_limit(tmp_path: Path) -> None:
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    with pytest.raises(BadInputError, match="up to 0 megapixels"):
        read_image(tmp_path / "big.png", max_pixels=5000)
