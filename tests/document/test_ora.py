"""OpenRaster projects: exact round trips, files from Krita, and one clear error per bad file."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.document import Document, Layer
from studio.document.ora import MAX_LAYERS, open_project, save_project
from studio.errors import BadInputError

IMAGES = Path(__file__).parent.parent / "images"


def layered_document(width: int = 120, height: int = 90, seed: int = 0) -> Document:
    rng = np.random.default_rng(seed)
    doc = Document.from_image(rng.integers(0, 256, (height, width, 3), np.uint8), "Photo")
    paint = Layer.blank(width, height, "Paint")
    paint.pixels[10:40, 30:90] = rng.integers(0, 256, (30, 60, 4), np.uint8)
    paint.pixels[70, 5] = (9, 8, 7, 0)  # colour under zero alpha is kept too
    paint.opacity = 0.35
    hidden = Layer.blank(width, height, "Hidden sketch")
    hidden.pixels[50:, 100:] = (0, 0, 255, 255)
    hidden.visible = False
    empty = Layer.blank(width, height, "Empty")
    result = Layer.blank(width, height, "Inpaint result")
    result.pixels[20:30, 0:15] = (200, 100, 50, 255)
    result.provenance = {"task": "inpaint", "model": "studio-inpaint", "seed": 7, "params": {}}
    for layer in (paint, hidden, empty, result):
        doc.add_layer(layer)
    doc.set_active(1)
    doc.mask[5:25, 5:45] = rng.random((20, 40), dtype=np.float32)
    return doc


def test_round_trip_keeps_every_layer_property_pixel_and_the_mask(tmp_path: Path) -> None:
    doc = layered_document()
    path = tmp_path / "work.ora"
    save_project(doc, path)
    opened = open_project(path)
    back = opened.document
    assert opened.notes == []
    assert (back.width, back.height) == (doc.width, doc.height)
    assert [layer.name for layer in back.layers] == [layer.name for layer in doc.layers]
    for before, after in zip(doc.layers, back.layers, strict=True):
        assert after.opacity == before.opacity
        assert after.visible == before.visible
        assert after.provenance == before.provenance
        np.testing.assert_array_equal(after.pixels, before.pixels, err_msg=before.name)
    np.testing.assert_array_equal(back.mask, doc.mask)
    assert back.active_index == 1
    assert not back.is_modified
    assert back.info.path == str(path)


def test_file_follows_openraster_layout(tmp_path: Path) -> None:
    path = tmp_path / "work.ora"
    save_project(layered_document(), path)
    with zipfile.ZipFile(path) as zf:
        first = zf.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert zf.read("mimetype") == b"image/openraster"
        names = zf.namelist()
        assert {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"} <= set(names)
        thumb = Image.open(io.BytesIO(zf.read("Thumbnails/thumbnail.png")))
        assert max(thumb.size) <= 256
        # layers are stored cropped to their content, with its position
        layers = {el.get("name"): el for el in ET.fromstring(zf.read("stack.xml")).iter("layer")}
        result = layers["Inpaint result"]
        assert (result.get("x"), result.get("y")) == ("0", "20")
        assert Image.open(io.BytesIO(zf.read(result.get("src")))).size == (15, 10)


def test_krita_written_file_opens_with_names_opacity_visibility_offsets() -> None:
    """tests/images/krita_layers.ora was written by Krita 5 (see tests/images/README.md)."""
    opened = open_project(IMAGES / "krita_layers.ora")
    doc = opened.document
    assert (doc.width, doc.height) == (64, 48)
    props = [(layer.name, round(layer.opacity, 3), layer.visible) for layer in doc.layers]
    assert props == [
        ("Paper", 1.0, True),
        ("Hidden patch", 1.0, False),
        ("Square", 1.0, True),
        ("Dot", 0.498, True),
        ("Multiply strip", 0.8, True),
    ]
    square = doc.layers[2].pixels
    ys, xs = np.nonzero(square[:, :, 3])
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (12, 9, 31, 24)  # 20x16 at (12, 9)
    hidden = doc.layers[1].pixels
    assert hidden[36:44, 50:58, 3].min() == 255 and hidden[:36, :, 3].max() == 0
    assert opened.notes == [
        "'Multiply strip' uses the blend mode 'svg:multiply', which Studio lacks; it shows as "
        "normal",
        "group 'Group' was flattened: its 2 layers are now separate layers",
    ]


def _zip(path: Path, entries: dict[str, bytes], *, mimetype: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        if mimetype:
            zf.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster")
        for name, data in entries.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED)
    return path


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), (1, 2, 3, 255)).save(buf, "PNG")
    return buf.getvalue()


def _stack(layers: str, w: int = 8, h: int = 8) -> bytes:
    return f'<image w="{w}" h="{h}"><stack>{layers}</stack></image>'.encode()


ONE_LAYER = '<layer name="a" src="data/a.png"/>'


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the words its one error message must contain)."""
    ok = tmp / "ok.ora"
    save_project(layered_document(), ok)
    data = ok.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def put(name: str, content: bytes) -> Path:
        path = tmp / f"{name}.ora"
        path.write_bytes(content)
        return path

    cases["empty"] = (put("empty", b""), "empty")
    cases["not zip"] = (put("notzip", b"\x89PNG\r\n\x1a\n" + bytes(200)), "not a zip")
    cases["truncated"] = (put("trunc", data[: len(data) // 2]), "damaged or truncated")
    cases["no stack"] = (_zip(tmp / "nostack.ora", {"data/a.png": _png(8, 8)}), "stack.xml")
    cases["malformed"] = (
        _zip(tmp / "malformed.ora", {"stack.xml": b"<image w='8' h='8'><stack>"}),
        "malformed",
    )
    cases["escape"] = (
        _zip(
            tmp / "escape.ora",
            {"stack.xml": _stack('<layer name="x" src="../../etc/passwd"/>')},
        ),
        "outside the archive",
    )
    cases["absolute"] = (
        _zip(tmp / "abs.ora", {"stack.xml": _stack('<layer name="x" src="/etc/passwd"/>')}),
        "outside the archive",
    )
    bomb = tmp / "bomb.ora"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster")
        zf.writestr("stack.xml", _stack(ONE_LAYER))
        with zf.open("data/a.png", "w") as f:
            for _ in range(4):  # 64 MiB of zeros in 64 KiB: past the test's 32 MiB limit
                f.write(bytes(1 << 24))
    cases["zip bomb"] = (bomb, "zip bomb")
    # an entry whose header under-states its size: the bounded reader stops, the CRC fails
    liar = _zip(tmp / "liar.ora", {"stack.xml": _stack(ONE_LAYER), "data/a.png": bytes(1 << 20)})
    raw = bytearray(liar.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = raw.find(sig, raw.find(b"data/a.png") - 60 if sig == b"PK\x03\x04" else 0)
        while at >= 0:
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if raw[name_at : name_at + 10] == b"data/a.png":
                size_at = at + (22 if sig == b"PK\x03\x04" else 24)
                raw[size_at : size_at + 4] = (100).to_bytes(4, "little")
            at = raw.find(sig, at + 4)
    liar.write_bytes(bytes(raw))
    cases["lying size"] = (liar, "damaged")
    cases["huge image"] = (
        _zip(tmp / "huge.ora", {"stack.xml": _stack(ONE_LAYER, 40000, 40000)}),
        "megapixels",
    )
    big_png = io.BytesIO()
    Image.new("1", (20000, 20000)).save(big_png, "PNG")  # a few KiB that decode to 400 MP
    cases["huge layer"] = (
        _zip(
            tmp / "hugelayer.ora",
            {"stack.xml": _stack(ONE_LAYER), "data/a.png": big_png.getvalue()},
        ),
        "megapixels",
    )
    many = "".join(f'<layer name="l{i}" src="data/a.png"/>' for i in range(MAX_LAYERS + 1))
    cases["thousands of layers"] = (
        _zip(tmp / "many.ora", {"stack.xml": _stack(many), "data/a.png": _png(8, 8)}),
        "at most 1000",
    )
    cases["entities"] = (
        _zip(
            tmp / "lol.ora",
            {"stack.xml": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><image w="8" h="8"/>'},
        ),
        "DTD",
    )
    cases["missing layer png"] = (
        _zip(tmp / "missing.ora", {"stack.xml": _stack(ONE_LAYER)}),
        "not in the archive",
    )
    cases["layer not png"] = (
        _zip(tmp / "notpng.ora", {"stack.xml": _stack(ONE_LAYER), "data/a.png": b"GIF89a..."}),
        "not a readable PNG",
    )
    return cases


def test_each_bad_file_gets_one_clear_message_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.document import ora

    monkeypatch.setattr(ora, "MAX_ENTRY_BYTES", 32 << 20)  # the real 1 GiB works alike, slower
    cases = _bad_files(tmp_path)
    before = sorted(os.listdir(tmp_path))
    for name, (path, words) in cases.items():
        with pytest.raises(BadInputError) as info:
            open_project(path)
        message = str(info.value)
        assert message.startswith(str(path)), (name, message)
        assert words in message, (name, message)
        assert "\n" not in message, (name, message)
    assert sorted(os.listdir(tmp_path)) == before


_KILL_WRITER = """
import sys, numpy as np
from studio.document import Document, Layer
from studio.document.ora import save_project
rng = np.random.default_rng(1)
doc = Document.from_image(rng.integers(0, 256, (1500, 2000, 3), np.uint8))
for i in range(6):
    doc.add_layer(Layer(rng.integers(0, 256, (1500, 2000, 4), np.uint8), f"noise {i}"))
print("saving", flush=True)
save_project(doc, sys.argv[1], compress_level=9)
print("saved", flush=True)
"""


def test_save_killed_mid_write_leaves_previous_project_intact(tmp_path: Path) -> None:
    path = tmp_path / "work.ora"
    doc = layered_document()
    save_project(doc, path)
    before = path.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "saving"
    time.sleep(1.0)  # well into writing ~80 MB of incompressible layers at level 9
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    opened = open_project(path).document
    np.testing.assert_array_equal(opened.layers[1].pixels, doc.layers[1].pixels)
    # the kill came mid-write: its temporary file (named as atomic_write names it) is left
    others = [p.name for p in tmp_path.iterdir() if p != path]
    assert len(others) == 1 and others[0].startswith(".work.ora.") and others[0].endswith(".tmp")


def test_failure_mid_zip_leaves_previous_project_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.document import ora

    path = tmp_path / "work.ora"
    save_project(layered_document(), path)
    before = path.read_bytes()
    calls = 0
    real = ora._png_bytes

    def failing(pixels: np.ndarray, level: int) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        return real(pixels, level)

    monkeypatch.setattr(ora, "_png_bytes", failing)
    with pytest.raises(OSError, match="No space"):
        save_project(layered_document(seed=5), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["work.ora"]
