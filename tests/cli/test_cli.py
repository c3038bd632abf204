"""The command line: version, model list, headless upscale, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio import __version__
from studio.cli import main


@pytest.fixture
def photo_png(tmp_path: Path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


def test_version_through_the_real_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "studio", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == f"studio {__version__}"


def test_models_list_names_the_models_and_styles(capsys) -> None:
    assert main(["models", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert {"lanczos", "bicubic", "realesrgan-x4plus", "patchmatch"} <= set(names)
    assert {"starry-night", "copper"} <= set(names), "style names are listed"


@pytest.mark.parametrize("tile", ["0", "32"])
def test_upscale_writes_pil_equal_lanczos(tmp_path: Path, photo_png: Path, photo, tile) -> None:
    out = tmp_path / "big.png"
    rc = main(
        [
            "upscale",
            str(photo_png),
            str(out),
            "--scale",
            "2",
            "--model",
            "lanczos",
            "--tile",
            tile,
            "--quiet",
        ]
    )
    assert rc == 0
    got = np.asarray(Image.open(out))
    ref = np.asarray(Image.fromarray(photo).resize((256, 192), Image.LANCZOS))
    assert np.abs(got.astype(int) - ref).max() <= 1


def test_progress_bar_reaches_100_percent(tmp_path: Path, photo_png: Path, capsys) -> None:
    assert main(["upscale", str(photo_png), str(tmp_path / "o.png"), "--tile", "32"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "wrote" in err


def _bad_inputs(tmp_path: Path, photo_png: Path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    return [
        (["upscale", str(tmp_path / "missing.png"), str(tmp_path / "o.png")], "no such file"),
        (["upscale", str(empty), str(tmp_path / "o.png")], "empty"),
        (["upscale", str(text), str(tmp_path / "o.png")], "not an image"),
        (
            ["upscale", str(photo_png), str(tmp_path / "o.png"), "--model", "magic"],
            "unknown upscale model 'magic'",
        ),
        (["upscale", str(photo_png), str(tmp_path / "o.xyz")], "cannot write"),
    ]


def test_bad_inputs_give_one_clear_line(tmp_path: Path, photo_png: Path, capsys) -> None:
    for argv, fragment in _bad_inputs(tmp_path, photo_png):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, f"expected one line, got:\n{err}"
        assert err.startswith("studio: error:") and fragment in err, err
        assert "Traceback" not in err


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "t.png").write_text("text")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "studio",
            "upscale",
            str(tmp_path / "t.png"),
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr


def test_inpaint_and_outpaint_commands(tmp_path: Path, photo_png: Path, photo) -> None:
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[30:50, 40:70] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "filled.png"
    assert (
        main(
            [
                "inpaint",
                str(photo_png),
                str(tmp_path / "mask.png"),
                str(out),
                "--method",
                "navier-stokes",
                "--quiet",
            ]
        )
        == 0
    )
    filled = np.asarray(Image.open(out))
    np.testing.assert_array_equal(filled[mask == 0], photo[mask == 0])
    assert not np.array_equal(filled[mask > 0], photo[mask > 0])
    wide = tmp_path / "wide.png"
    assert main(["outpaint", str(photo_png), str(wide), "--right", "32", "--quiet"]) == 0
    assert Image.open(wide).size == (160, 96)


def test_mask_from_png_alpha_and_wrong_size(tmp_path: Path, photo_png: Path, capsys) -> None:
    rgba = np.zeros((96, 128, 4), np.uint8)
    rgba[10:20, 10:20, 3] = 255  # opaque = fill
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    assert (
        main(
            [
                "inpaint",
                str(photo_png),
                str(tmp_path / "alpha.png"),
                str(tmp_path / "o.png"),
                "--quiet",
            ]
        )
        == 0
    )
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    assert (
        main(["inpaint", str(photo_png), str(tmp_path / "small.png"), str(tmp_path / "o.png")]) == 1
    )
    assert "must be the same size" in capsys.readouterr().err


def test_stylize_command_with_mix_mask_and_picture(tmp_path: Path, photo_png: Path, photo) -> None:
    out = tmp_path / "styled.png"
    assert (
        main(["stylize", str(photo_png), str(out), "--mix", "copper=0.5,crimson=0.5", "--quiet"])
        == 0
    )
    assert np.abs(np.asarray(Image.open(out)).astype(int) - photo).mean() > 10
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[:, :40] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert (
        main(
            [
                "stylize",
                str(photo_png),
                str(out),
                "--style",
                str(photo_png),
                "--mask",
                str(tmp_path / "m.png"),
                "--feather",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    styled = np.asarray(Image.open(out))
    np.testing.assert_array_equal(styled[:, 40:], photo[:, 40:])


def test_stylize_bad_mix_is_one_line(tmp_path: Path, photo_png: Path, capsys) -> None:
    assert main(["stylize", str(photo_png), str(tmp_path / "o.png"), "--mix", "copper"]) == 1
    assert "name=weight" in capsys.readouterr().err


def test_generate_grid_is_seeded_and_a_strip_ends_on_its_seeds(tmp_path: Path) -> None:
    def generate(name: str, *extra: str) -> np.ndarray:
        path = tmp_path / name
        assert main(["generate", str(path), "--model", "studio-emoji-gan", *extra, "--quiet"]) == 0
        return np.asarray(Image.open(path))

    grid = generate("a.png", "--noise", "--seed", "7", "--count", "4")
    np.testing.assert_array_equal(grid, generate("b.png", "--noise", "--seed", "7", "--count", "4"))
    assert grid.shape[0] >= 2 * 64 and grid.shape[1] >= 2 * 64, "four 64 px cells"
    seven, nine = (
        generate("7.png", "--seed", "7", "--count", "1"),
        generate("9.png", "--seed", "9", "--count", "1"),
    )
    assert seven.shape[:2] == (64, 64) and not np.array_equal(seven, nine)
    np.testing.assert_array_equal(grid[:64, :64], seven)
    strip = generate("strip.png", "--seed", "9", "--interpolate-to", "7", "--count", "3")
    assert strip.shape[0] == 64 and strip.shape[1] >= 3 * 64
    np.testing.assert_array_equal(strip[:, :64], nine)
    np.testing.assert_array_equal(strip[:, -64:], seven)


def test_generate_with_an_unknown_model_is_one_clear_line(tmp_path: Path, capsys) -> None:
    assert main(["generate", str(tmp_path / "x.png"), "--model", "no-such-gan"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-gan" in err[0]
