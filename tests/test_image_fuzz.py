"""Damaged image files never raise a traceback or hang: a seeded fuzz of PNG, JPEG, WebP, TIFF,
BMP and GIF files (bit flips, truncations, header edits) through ``read_image`` and the CLI.

Every case must either read (RGB or RGBA pixels) or raise a :class:`StudioError`; anything else
is the failure this test exists to catch.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.errors import StudioError
from studio.imageio import read_image


def _sources() -> dict[str, bytes]:
    """Small valid files, one per format and flavour, made here (no fixtures on disk)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, rng.integers(0, 256, (17, 23), dtype=np.uint8)])
    im, im_a = Image.fromarray(rgb), Image.fromarray(rgba)

    def save(image: Image.Image, fmt: str, **kwargs) -> bytes:
        buf = io.BytesIO()
        image.save(buf, fmt, **kwargs)
        return buf.getvalue()

    frames = [im.quantize(16), Image.fromarray(rgb[::-1]).quantize(16)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    exif = im.getexif()
    exif[0x0112] = 6
    return {
        "rgb.png": save(im, "PNG"),
        "rgba.png": save(im_a, "PNG"),
        "rgb16.png": save(Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257), "PNG"),
        "palette.png": save(im.quantize(8), "PNG", transparency=0),
        "plain.jpg": save(im, "JPEG", quality=90),
        "exif.jpg": save(im, "JPEG", exif=exif.tobytes()),
        "progressive.jpg": save(im, "JPEG", progressive=True),
        "lossy.webp": save(im, "WEBP", quality=80),
        "alpha.webp": save(im_a, "WEBP", lossless=True),
        "raw.tif": save(im, "TIFF"),
        "lzw.tif": save(im_a, "TIFF", compression="tiff_lzw"),
        "plain.bmp": save(im, "BMP"),
        "palette.bmp": save(im.quantize(8), "BMP"),
        "still.gif": save(im.quantize(32), "GIF"),
        "animated.gif": gif.getvalue(),
    }


SOURCES = _sources()


def _header_edit(data: bytearray, rng: np.random.Generator) -> None:
    """Overwrite header fields, favouring the values that break readers: 0, max, huge sizes."""
    limit = min(len(data), 64)
    for _ in range(int(rng.integers(1, 4))):
        at = int(rng.integers(0, limit))
        value = rng.choice([0x00, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))])
        data[at] = int(value)


def _png_size_edit(data: bytearray, rng: np.random.Generator) -> None:
    """A PNG claiming another width/height, with its IHDR checksum fixed so it is believed."""
    width = int(rng.choice([0, 1, 65535, 16384, 1 << 31, int(rng.integers(1, 5000))]))
    height = int(rng.choice([0, 1, 65535, 16384, int(rng.integers(1, 5000))]))
    data[16:24] = struct.pack(">II", width % (1 << 32), height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))


def mutate(name: str, rng: np.random.Generator) -> bytes:
    data = bytearray(SOURCES[name])
    kind = int(rng.integers(0, 5))
    if kind == 0:  # bit flips anywhere
        for _ in range(int(rng.integers(1, 9))):
            data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # truncation
        data = data[: int(rng.integers(0, len(data)))]
    elif kind == 2:  # header fields
        _header_edit(data, rng)
    elif kind == 3 and name.endswith(".png"):
        _png_size_edit(data, rng)
    elif kind == 3:  # a slice of the file repeated (a bad copy or a broken download resume)
        a = int(rng.integers(0, len(data)))
        b = min(len(data), a + int(rng.integers(1, 200)))
        at = int(rng.integers(0, len(data)))
        data[at:at] = data[a:b]
    else:  # header edit plus truncation
        _header_edit(data, rng)
        data = data[: max(8, int(rng.integers(0, len(data))))]
    return bytes(data)


def _check(path: Path) -> str:
    """'read' or 'refused'; raises AssertionError on anything else."""
    try:
        loaded = read_image(path)
    except StudioError as exc:
        assert "\n" not in str(exc), f"a multi-line message: {exc}"
        return "refused"
    except Exception as exc:  # the failure this test exists for
        raise AssertionError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
    px = loaded.pixels
    assert px.ndim == 3 and px.shape[2] in (3, 4) and px.dtype in (np.uint8, np.uint16)
    return "read"


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # damage is the point
def test_fuzzed_images_never_raise_a_traceback_or_hang(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    names = sorted(SOURCES)
    outcomes = {"read": 0, "refused": 0}
    slowest, slowest_case = 0.0, ""
    start = time.perf_counter()
    for case in range(700):
        name = names[case % len(names)]
        path = tmp_path / f"{case:03d}-{name}"
        path.write_bytes(mutate(name, rng))
        t0 = time.perf_counter()
        outcomes[_check(path)] += 1
        if (took := time.perf_counter() - t0) > slowest:
            slowest, slowest_case = took, path.name
        path.unlink()
    elapsed = time.perf_counter() - start
    assert outcomes["refused"] > 100 and outcomes["read"] > 50, outcomes
    assert slowest < 3.0, f"{slowest_case} took {slowest:.1f} s"
    assert elapsed < 30, f"{elapsed:.1f} s for {sum(outcomes.values())} files"


@pytest.mark.parametrize("case", range(6))
def test_fuzzed_images_through_the_cli_give_a_result_or_one_line(
    tmp_path: Path, capsys, case: int
) -> None:
    rng = np.random.default_rng(1000 + case)
    name = sorted(SOURCES)[int(rng.integers(0, len(SOURCES)))]
    damaged = tmp_path / name
    damaged.write_bytes(mutate(name, rng))
    out = tmp_path / "out.png"
    rc = main(["upscale", str(damaged), str(out), "--model", "lanczos", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    if rc == 0:
        assert Image.open(out).size[0] >= 2
    else:
        assert rc == 1 and err.startswith("studio: error: ") and "\n" not in err, err
        assert not out.exists()
