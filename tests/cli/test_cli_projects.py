"""The command line reads OpenRaster projects, writes them non-destructively, and labels its
outputs with what made them unless told not to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.cli import main
from studio.document import Document, Layer
from studio.document.ora import open_project, save_project
from studio.export_metadata import EDITED

IMAGES = Path(__file__).parent.parent / "images"


def _photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), np.uint8)).save(path)
    return path


def test_upscale_reads_a_project_as_its_visible_layers_composited(tmp_path: Path) -> None:
    doc = Document.from_image(np.full((20, 30, 3), 90, np.uint8))
    top = Layer.blank(30, 20, "Red")
    top.pixels[5:10, 5:15] = (255, 0, 0, 255)
    hidden = Layer.blank(30, 20, "Hidden")
    hidden.pixels[:] = (0, 255, 0, 255)
    hidden.visible = False
    doc.add_layer(top)
    doc.add_layer(hidden)
    save_project(doc, tmp_path / "in.ora")
    out = tmp_path / "out.png"
    assert main(["upscale", str(tmp_path / "in.ora"), str(out), "--scale", "1", "--quiet"]) == 0
    pixels = np.asarray(Image.open(out).convert("RGB"))
    np.testing.assert_array_equal(pixels, doc.composite()[:, :, :3])  # scale 1: identical


def test_krita_project_can_be_upscaled_headless(tmp_path: Path) -> None:
    out = tmp_path / "big.png"
    args = ["upscale", str(IMAGES / "krita_layers.ora"), str(out), "--scale", "2", "--quiet"]
    assert main(args) == 0
    assert Image.open(out).size == (128, 96)


def test_output_ending_in_ora_is_a_project_with_the_result_above_the_input(
    tmp_path: Path,
) -> None:
    photo = _photo(tmp_path)
    out = tmp_path / "result.ora"
    assert main(["upscale", str(photo), str(out), "--scale", "2", "--quiet"]) == 0
    doc = open_project(out).document
    assert (doc.width, doc.height) == (64, 48)
    bottom, top = doc.layers
    assert bottom.name == "photo" and bottom.provenance is None
    assert top.provenance is not None
    assert top.provenance["task"] == "upscale" and top.provenance["model"] == "lanczos"
    assert top.provenance["params"]["scale"] == 2.0
    assert "lanczos" in top.name


def test_outputs_are_labelled_and_no_metadata_turns_it_off(tmp_path: Path) -> None:
    photo = _photo(tmp_path)
    labelled, plain = tmp_path / "labelled.png", tmp_path / "plain.png"
    assert main(["upscale", str(photo), str(labelled), "--scale", "2", "--quiet"]) == 0
    args = ["upscale", str(photo), str(plain), "--scale", "2", "--quiet", "--no-metadata"]
    assert main(args) == 0
    with Image.open(labelled) as im:
        assert "Model: lanczos" in im.info["parameters"]
        assert EDITED.encode() in im.info["XML:com.adobe.xmp"].encode()
    with Image.open(plain) as im:
        assert "parameters" not in im.info and "XML:com.adobe.xmp" not in im.info
    np.testing.assert_array_equal(np.asarray(Image.open(plain)), np.asarray(Image.open(labelled)))


def test_bad_project_input_is_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.ora"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert main(["upscale", str(bad), str(tmp_path / "o.png"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("studio: error: ") and "bad.ora" in err[0]
    assert not (tmp_path / "o.png").exists()
