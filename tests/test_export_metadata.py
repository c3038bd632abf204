"""Exports: lossless formats pixel-identical at 8 and 16 bits; labels read back with Pillow and
an XMP parser; the original ICC profile and EXIF kept."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.export_metadata import (
    EDITED,
    GENERATED,
    ExportOptions,
    a1111_parameters,
    labels_from_layers,
    provenance_of,
)
from studio.imageio import read_image, write_image

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
IPTC = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"
DC = "{http://purl.org/dc/elements/1.1/}"

STEP = {
    "task": "inpaint",
    "model": "studio-inpaint",
    "seed": 7,
    "prompt": "a red kite, over the sea",
    "negative_prompt": "blurry",
    "params": {"grow": 4, "feather": 8},
}


def _pixels(channels: int = 4, dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(3)
    top = np.iinfo(dtype).max
    return rng.integers(0, int(top) + 1, (33, 47, channels), dtype=dtype)


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Studio test camera"  # Make
    return exif.tobytes()


def _xmp_of(path: Path) -> ET.Element:
    with Image.open(path) as im:
        raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        if raw is None and im.format == "TIFF":
            raw = im.tag_v2.get(700)
    assert raw, f"{path.name} carries no XMP"
    if isinstance(raw, str):
        raw = raw.encode()
    start, end = raw.index(b"<x:xmpmeta"), raw.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")
    return ET.fromstring(raw[start:end])


def _source_type(xmp: ET.Element) -> str | None:
    desc = xmp.find(f".//{RDF}Description")
    assert desc is not None
    return desc.get(f"{IPTC}DigitalSourceType")


def test_a1111_parameters_text_follows_the_convention() -> None:
    text = a1111_parameters(STEP)
    lines = text.split("\n")
    assert lines[0] == "a red kite, over the sea"
    assert lines[1] == "Negative prompt: blurry"
    assert lines[2].startswith("Seed: 7, Model: studio-inpaint, Studio task: inpaint, Grow: 4")


@pytest.mark.parametrize(
    ("name", "bit_depth", "lossless"),
    [
        ("out.png", None, False),
        ("out.png", 16, False),
        ("out.tif", None, False),
        ("out.tiff", 16, False),
        ("out.webp", None, True),
    ],
)
@pytest.mark.parametrize("channels", [3, 4])
def test_lossless_exports_are_pixel_identical_and_labelled(
    tmp_path: Path, name: str, bit_depth: int | None, lossless: bool, channels: int
) -> None:
    pixels = _pixels(channels)
    labels = labels_from_layers([None, STEP])
    path = tmp_path / name
    icc = b"not a real profile but kept byte for byte" * 3
    options = ExportOptions(labels, lossless=lossless, bit_depth=bit_depth)
    write_image(path, pixels, {"icc_profile": icc}, options)
    back = read_image(path).pixels
    expected = pixels.astype(np.uint16) * 257 if bit_depth == 16 else pixels
    assert back.dtype == expected.dtype
    np.testing.assert_array_equal(back, expected)  # atol=0: lossless means identical
    assert _source_type(_xmp_of(path)) == EDITED
    with Image.open(path) as im:
        assert im.info.get("icc_profile") == icc
        if name.endswith(".png"):
            assert im.info["parameters"] == labels.parameters_text()


def test_sixteen_bit_source_stays_identical_in_png_and_tiff(tmp_path: Path) -> None:
    pixels = _pixels(4, np.uint16)
    for name in ("deep.png", "deep.tif"):
        write_image(tmp_path / name, pixels, {}, ExportOptions(labels_from_layers([STEP])))
        np.testing.assert_array_equal(read_image(tmp_path / name).pixels, pixels)


def test_jpeg_keeps_exif_and_icc_and_carries_xmp_with_quality(tmp_path: Path) -> None:
    pixels = _pixels(3)
    labels = labels_from_layers([STEP])
    meta = {"exif": _exif(), "icc_profile": b"icc bytes" * 4}
    write_image(tmp_path / "q95.jpg", pixels, meta, ExportOptions(labels, quality=95))
    write_image(tmp_path / "q40.jpg", pixels, meta, ExportOptions(labels, quality=40))
    assert (tmp_path / "q40.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    with Image.open(tmp_path / "q40.jpg") as im:
        assert im.getexif()[0x010F] == "Studio test camera"
        assert im.info["icc_profile"] == b"icc bytes" * 4
    xmp = _xmp_of(tmp_path / "q40.jpg")
    assert _source_type(xmp) == EDITED
    description = xmp.find(f".//{DC}description/{RDF}Alt/{RDF}li")
    assert description is not None and description.text == labels.parameters_text()


def test_lossy_webp_uses_quality(tmp_path: Path) -> None:
    pixels = _pixels(3)
    labels = labels_from_layers([STEP])
    write_image(tmp_path / "a.webp", pixels, {}, ExportOptions(labels, quality=30))
    write_image(tmp_path / "b.webp", pixels, {}, ExportOptions(labels, lossless=True))
    assert (tmp_path / "a.webp").stat().st_size < (tmp_path / "b.webp").stat().st_size
    assert _source_type(_xmp_of(tmp_path / "a.webp")) == EDITED


def test_generated_picture_is_trained_algorithmic_media(tmp_path: Path) -> None:
    from studio.engine.tasks.generate import GenerateParams

    step = provenance_of(GenerateParams(seed=42), whole_image=True)
    assert step["task"] == "generate" and step["seed"] == 42 and step["model"]
    labels = labels_from_layers([step])
    write_image(tmp_path / "gen.png", _pixels(3), {}, ExportOptions(labels))
    assert _source_type(_xmp_of(tmp_path / "gen.png")) == GENERATED
    with Image.open(tmp_path / "gen.png") as im:
        assert "Seed: 42" in im.info["parameters"]


def test_no_labels_when_no_model_touched_it_or_when_turned_off(tmp_path: Path) -> None:
    assert labels_from_layers([None, None]) is None
    write_image(tmp_path / "plain.png", _pixels(3), {"text": {"Author": "me"}}, ExportOptions())
    with Image.open(tmp_path / "plain.png") as im:
        assert im.info.get("Author") == "me"
        assert "parameters" not in im.info and "XML:com.adobe.xmp" not in im.info


def test_prompt_runs_name_model_files_only_and_leave_out_noise_options(tmp_path: Path) -> None:
    from studio.engine.jobs import OutpaintParams, PromptedFill
    from studio.engine.tasks.generate import GenerateParams

    model = tmp_path / "artist" / "models" / "dream.safetensors"
    lora = tmp_path / "artist" / "loras" / "ink.safetensors"
    params = GenerateParams(
        model=str(model), prompt="a cat", count=1, loras=((str(lora), 0.5),), steps=4
    )
    text = a1111_parameters(provenance_of(params))
    assert str(tmp_path) not in text, "no folder of this machine in a shared image"
    assert "Model: dream.safetensors" in text and "ink.safetensors" in text
    for noise_only in ("Truncation", "Seed b", "Out size", "Strength"):
        assert noise_only not in text, noise_only
    assert "Steps: 4" in text

    gan = a1111_parameters(provenance_of(GenerateParams(model="studio-emoji-gan", seed=3)))
    assert "Truncation: 1.0" in gan and "Steps" not in gan and "Sampler" not in gan

    fill = PromptedFill(str(model), "a beach", steps=3)
    outpaint = provenance_of(OutpaintParams(right=64, prompted=fill))
    assert outpaint["model"] == "dream.safetensors" and outpaint["prompt"] == "a beach"
    assert "method" not in outpaint["params"] and str(tmp_path) not in str(outpaint)
