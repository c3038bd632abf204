"""Reading what an image file's header says, and the frames of animated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import BadInputError
from studio.imageio import frames_note, read_header, read_image


def _frames(n: int) -> list[Image.Image]:
    return [Image.fromarray(np.full((20, 30, 3), 20 * i, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animated_files_report_their_frame_count(tmp_path: Path, suffix: str) -> None:
    frames = _frames(12)
    path = tmp_path / f"x{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40)
    loaded = read_image(path)
    assert loaded.pixels.shape == (20, 30, 3)
    assert loaded.metadata["frames"] == 12
    assert read_header(path).frames == 12
    assert frames_note(path, loaded.metadata) == f"x{suffix} has 12 frames; Studio edits the first"


def test_a_still_image_has_no_frame_note(tmp_path: Path) -> None:
    path = tmp_path / "still.png"
    _frames(1)[0].save(path)
    loaded = read_image(path)
    assert "frames" not in loaded.metadata and frames_note(path, loaded.metadata) is None


def test_the_header_gives_size_channels_and_depth(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((5, 7, 4), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((5, 7), np.uint16)).save(tmp_path / "g16.png")
    header = read_header(tmp_path / "a.png")
    assert (header.width, header.height, header.channels, header.itemsize) == (7, 5, 4, 1)
    assert header.decoded_bytes == read_image(tmp_path / "a.png").pixels.nbytes
    grey = read_header(tmp_path / "g16.png")
    assert (grey.channels, grey.itemsize) == (3, 2)
    assert grey.decoded_bytes == read_image(tmp_path / "g16.png").pixels.nbytes


def test_the_header_swaps_sides_for_a_rotated_jpeg(tmp_path: Path) -> None:
    im = Image.fromarray(np.zeros((10, 40, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90
    im.save(tmp_path / "r.jpg", exif=exif)
    header = read_header(tmp_path / "r.jpg")
    assert (header.width, header.height) == (10, 40)
    assert read_image(tmp_path / "r.jpg").pixels.shape[:2] == (40, 10)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_the_header_is_read_without_decoding(tmp_path: Path, monkeypatch, suffix) -> None:
    """Pillow decodes in ``load()``; reading a header must never call it (for PNG, even
    ``getexif()`` would: an eXIf chunk may follow the pixels)."""
    from PIL import ImageFile

    path = tmp_path / f"big{suffix}"
    Image.new("RGB", (640, 480)).save(path)

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    header = read_header(path)
    assert (header.width, header.height, header.channels) == (640, 480, 3)


def test_the_header_reports_the_same_errors_as_reading(tmp_path: Path) -> None:
    (tmp_path / "t.png").write_text("not a picture")
    with pytest.raises(BadInputError, match="not an image Studio can read"):
        read_header(tmp_path / "t.png")
    with pytest.raises(BadInputError, match="no such file"):
        read_header(tmp_path / "missing.png")
