"""``studio outpaint --aspect`` and the inpaint/outpaint default method on the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import _build_parser, main


@pytest.fixture
def photo_png(tmp_path: Path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


def test_aspect_extends_evenly_to_the_ratio(tmp_path: Path, photo_png: Path, photo) -> None:
    out = tmp_path / "wide.png"
    args = ["outpaint", str(photo_png), str(out), "--aspect", "16:9", "--method", "telea"]
    assert main([*args, "--quiet", "--feather", "0"]) == 0
    wide = np.asarray(Image.open(out))
    assert wide.shape[:2] == (96, 171)  # 128x96 -> round(96 * 16 / 9) = 171 wide
    left = (171 - 128) // 2
    np.testing.assert_array_equal(wide[:, left : left + 128, :3], photo)


def test_aspect_taller_than_the_image_extends_top_and_bottom(tmp_path: Path, photo_png) -> None:
    out = tmp_path / "tall.png"
    assert main(["outpaint", str(photo_png), str(out), "--aspect", "1:1", "--quiet"]) == 0
    assert Image.open(out).size == (128, 128)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--aspect", "16:9", "--right", "32"], "either --aspect or the sides"),
        (["--aspect", "4:3"], "already has the aspect ratio 4:3"),
        (["--aspect", "wide"], "'wide' is not an aspect ratio"),
    ],
)
def test_bad_aspect_requests_are_one_line(tmp_path, photo_png, capsys, extra, message) -> None:
    assert main(["outpaint", str(photo_png), str(tmp_path / "o.png"), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("studio: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "o.png").exists()


def test_inpaint_and_outpaint_default_to_the_choice_by_mask() -> None:
    parser = _build_parser()
    assert parser.parse_args(["inpaint", "a.png", "m.png", "o.png"]).method == "auto"
    assert parser.parse_args(["outpaint", "a.png", "o.png"]).method == "auto"
