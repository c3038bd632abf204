"""A real painting program reads our projects and we read its: Krita, headless under Xvfb.

Skipped when ``krita`` or ``xvfb-run`` is missing (Debian: ``apt-get install
--no-install-recommends krita xvfb xauth``, about 80 MB). The read side is also covered without
Krita by ``tests/images/krita_layers.ora`` in test_ora.py.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.document import Document, Layer
from studio.document.ora import open_project, save_project

pytestmark = pytest.mark.skipif(
    shutil.which("krita") is None or shutil.which("xvfb-run") is None,
    reason="krita and xvfb-run are not installed",
)


def _krita(source: Path, target: Path) -> None:
    result = subprocess.run(
        ["xvfb-run", "-a", "krita", str(source), "--export", "--export-filename", str(target)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert target.exists(), (
        f"krita wrote nothing (exit {result.returncode}): {result.stderr[-800:]}"
    )


def _document() -> Document:
    h, w = 96, 128
    base = np.zeros((h, w, 3), np.uint8)
    base[:] = (40, 90, 160)
    base[20:60, 10:70] = (200, 180, 20)
    doc = Document.from_image(base, "Background")
    box = Layer.blank(w, h, "Red box")
    box.pixels[30:70, 40:100] = (220, 30, 30, 255)
    box.opacity = 0.6
    hidden = Layer.blank(w, h, "Hidden")
    hidden.pixels[:] = (0, 255, 0, 255)
    hidden.visible = False
    soft = Layer.blank(w, h, "Soft")
    soft.pixels[5:40, 60:120] = (255, 255, 255, 128)
    for layer in (box, hidden, soft):
        doc.add_layer(layer)
    return doc


def test_krita_flattens_our_project_like_our_composite(tmp_path: Path) -> None:
    doc = _document()
    save_project(doc, tmp_path / "studio.ora")
    _krita(tmp_path / "studio.ora", tmp_path / "flat.png")
    theirs = np.asarray(Image.open(tmp_path / "flat.png").convert("RGBA")).astype(int)
    ours = doc.composite().astype(int)
    # measured: identical (max difference 0); 2 levels allow for rounding in Krita's blending
    assert np.abs(theirs - ours).max() <= 2


def test_project_krita_rewrites_opens_with_every_layer(tmp_path: Path) -> None:
    doc = _document()
    save_project(doc, tmp_path / "studio.ora")
    _krita(tmp_path / "studio.ora", tmp_path / "krita.ora")
    with zipfile.ZipFile(tmp_path / "krita.ora") as zf:
        assert zf.read("mimetype") == b"image/openraster"
        Image.open(io.BytesIO(zf.read("mergedimage.png"))).verify()
    back = open_project(tmp_path / "krita.ora").document
    assert [(x.name, round(x.opacity, 2), x.visible) for x in back.layers] == [
        (x.name, round(x.opacity, 2), x.visible) for x in doc.layers
    ]
    for ours, theirs in zip(doc.layers, back.layers, strict=True):
        # Krita stores each layer cropped with its offset; placed back, the pixels match
        np.testing.assert_array_equal(theirs.pixels, ours.pixels, err_msg=ours.name)
