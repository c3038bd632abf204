"""The command line's limits: numeric ranges, 1x models, huge images refused before decoding,
animated files."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from studio.cli import main


@pytest.fixture
def photo_png(tmp_path: Path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture
def mask_png(tmp_path: Path, photo) -> Path:
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[30:50, 40:70] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(mask).save(path)
    return path


def _numeric_cases(img: str, mask: str, out: str) -> list[tuple[list[str], str]]:
    """(argv, fragment of the range) for every numeric option of every command."""
    up, inp, outp = ["upscale", img, out], ["inpaint", img, mask, out], ["outpaint", img, out]
    sty, gen = ["stylize", img, out], ["generate", out]
    return [
        ([*up, "--scale", "0"], "scale must be between 0.01 and 16"),
        ([*up, "--scale", "nan"], "scale must be between 0.01 and 16"),
        ([*up, "--width", "0"], "width must be between 1 and 65536 px"),
        ([*up, "--tile", "1"], "tile must be 0 (no tiling) or between 16 and 16384 px"),
        ([*up, "--tile", "-5"], "tile must be 0 (no tiling) or between 16 and 16384 px"),
        ([*inp, "--grow", "-1000"], "grow must be between -256 and 256 px"),
        ([*inp, "--feather", "100000"], "feather must be between 0 and 256 px"),
        ([*inp, "--padding", "-1"], "padding must be between 0 and 1024 px"),
        ([*inp, "--seed", "-1"], "seed must be between 0 and 4294967295"),
        ([*outp, "--left", "-1"], "left must be between 0 and 4096 px"),
        ([*outp, "--right", "5000"], "right must be between 0 and 4096 px"),
        ([*outp, "--top", "-2"], "top must be between 0 and 4096 px"),
        ([*outp, "--bottom", "9999"], "bottom must be between 0 and 4096 px"),
        ([*outp, "--right", "8", "--feather", "-1"], "feather must be between 0 and 256 px"),
        ([*outp, "--right", "8", "--seed", "-3"], "seed must be between 0 and 4294967295"),
        ([*outp, "--aspect", "nan"], "is not an aspect ratio"),
        ([*sty, "--strength", "1.5"], "strength must be between 0 and 1"),
        ([*sty, "--resolution", "-1"], "resolution must be 0 (full size) or between 64 and"),
        ([*sty, "--tile", "1"], "tile must be 0 (no tiling) or between 16 and 16384 px"),
        ([*sty, "--feather", "-8"], "feather must be between 0 and 256 px"),
        ([*sty, "--mix", "starry-night=nan"], "'starry-night' must be between 0 and 1, got nan"),
        ([*sty, "--mix", "starry-night=0.5,copper=inf"], "'copper' must be between 0 and 1"),
        ([*gen, "--seed", "-1"], "seed must be between 0 and"),
        ([*gen, "--count", "0"], "count must be between 1 and 256"),
        ([*gen, "--truncation", "0"], "truncation must be in (0, 2]"),
        ([*gen, "--interpolate-to", "-1"], "the seed to interpolate to must be between 0 and"),
        ([*gen, "--strength", "-0.5"], "strength must be between 0 and 3"),
        ([*gen, "--size", "8"], "size must be between 16 and 1024 px"),
    ]


def test_every_numeric_option_is_range_checked_in_one_line(
    tmp_path: Path, photo_png: Path, mask_png: Path, capsys
) -> None:
    out = tmp_path / "out.png"
    for argv, fragment in _numeric_cases(str(photo_png), str(mask_png), str(out)):
        assert main([*argv, "--quiet"]) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, f"{argv}: expected one line, got:\n{err}"
        assert err.startswith("studio: error:") and fragment in err, f"{argv}: {err}"
        assert not out.exists(), f"{argv}: nothing may be written"


def test_a_1x_restoration_model_through_the_cli_keeps_the_size(
    tmp_path: Path, photo_png: Path, photo
) -> None:
    from studio.models.archs.srvgg import SRVGGNetCompact

    torch.manual_seed(0)
    net = SRVGGNetCompact(nf=8, num_conv=2, scale=1)
    model = tmp_path / "dejpeg-1x.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, model)
    out = tmp_path / "restored.png"
    argv = ["upscale", str(photo_png), str(out), "--model", str(model), "--tile", "32"]
    assert main([*argv, "--quiet"]) == 0
    restored = np.asarray(Image.open(out))
    assert restored.shape == photo.shape and not np.array_equal(restored, photo)


def test_nan_weights_fail_with_one_line_and_write_nothing(
    tmp_path: Path, photo_png: Path, capsys
) -> None:
    from studio.models.archs.srvgg import SRVGGNetCompact

    state = {
        k: v.clone().contiguous() for k, v in SRVGGNetCompact(4, 3, 4, 1, 2).state_dict().items()
    }
    state["body.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, tmp_path / "nan.safetensors")
    out = tmp_path / "o.png"
    argv = ["upscale", str(photo_png), str(out), "--model", str(tmp_path / "nan.safetensors")]
    assert main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "NaN or infinity" in err and not out.exists()


def write_black_png(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit greyscale PNG, all black, compressed row block by row block: a
    16384x16384 one is ~260 KB on disk and never exists uncompressed in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = bytes(1 + width) * 64  # filter byte + pixels, 64 rows at a time
    packer = zlib.compressobj(9)
    idat = [packer.compress(rows) for _ in range(height // 64)]
    idat += [packer.compress(bytes(1 + width) * (height % 64)), packer.flush()]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", b"".join(idat)))
        f.write(chunk(b"IEND", b""))
    return path


_MEASURE = """
import resource, sys, time
import studio.engine.runner, studio.engine.tasks.upscale, studio.engine.tasks.preflight
from studio.engine.device import choose_device, describe
from studio.cli import main
describe(choose_device())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
rc = main(sys.argv[1:])
print(rc, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_huge_image_is_refused_from_its_header_before_decoding(tmp_path: Path) -> None:
    """16384x16384 PNG (260 KB on disk, 805 MB decoded as RGB), upscaled x4: the old code
    decoded it first (3.8 GB resident, 18 s here) and only then refused."""
    big = write_black_png(tmp_path / "big.png", 16384, 16384)
    assert big.stat().st_size < 2_000_000
    out = tmp_path / "o.png"
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, "upscale", str(big), str(out), "--scale", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    rc, seconds, grew_kib = result.stdout.split()
    assert rc == "1", result.stderr
    err = result.stderr.strip()
    assert err.count("\n") == 0 and "65536x65536" in err and "the limit is" in err, err
    assert int(grew_kib) < 150_000, f"resident memory grew by {int(grew_kib) // 1024} MiB"
    assert float(seconds) < 10, f"the refusal took {float(seconds):.1f} s"
    assert not out.exists()


def test_an_animated_gif_warns_that_only_its_first_frame_is_used(tmp_path: Path, capsys) -> None:
    frames = [Image.fromarray(np.full((24, 32, 3), 20 * i, np.uint8)) for i in range(12)]
    gif = tmp_path / "x.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50)
    out = tmp_path / "o.png"
    assert main(["upscale", str(gif), str(out), "--model", "lanczos", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["studio: warning: x.gif has 12 frames; Studio edits the first"]
    assert Image.open(out).size == (64, 48)
