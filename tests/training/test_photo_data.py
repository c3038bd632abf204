"""Photo data set preparation on a tiny fake source tree (no Debian packages needed)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import PySide6
import pytest
from PIL import Image

from studio.training import gcompris, photos

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: GPL-3+

Files: nature/Big.jpg
       nature/Other.jpg
Copyright: 2021 Photographer
License: CC-BY-SA-4.0
 Long licence text
 continues here.

Files: src/activities/erase/resource/fox.jpg
Copyright: 2022 Fox Person
License: CC0-1.0
"""


def photo(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(1, h // 16), max(1, w // 16), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)


def test_dep5_last_matching_stanza_wins_and_extensions_are_ignored() -> None:
    stanzas = gcompris.parse_dep5(COPYRIGHT)
    assert [s.license for s in stanzas] == ["GPL-3+", "CC-BY-SA-4.0", "CC0-1.0"]
    assert stanzas[1].patterns == ("nature/Big.jpg", "nature/Other.jpg")
    assert gcompris.dep5_license(stanzas, "nature/Other.jpg").license == "CC-BY-SA-4.0"
    assert gcompris.dep5_license(stanzas, "nature/Unlisted.jpg").license == "GPL-3+"
    webp = "src/activities/erase/resource/fox.webp"  # listed as .jpg upstream
    assert gcompris.dep5_license(stanzas, webp).license == "CC0-1.0"


def _fake_mate(root: Path) -> Path:
    pkg = root / "mate-backgrounds"
    nature = pkg / "usr/share/backgrounds/mate/nature"
    nature.mkdir(parents=True)
    photo(1200, 1600, 1).save(nature / "Big.jpg", quality=92)  # lossy, >= 1000: halved
    photo(300, 400, 2).save(nature / "Mid.jpg", quality=92)
    photo(100, 140, 3).save(nature / "Tiny.jpg", quality=92)  # < 256: skipped
    (pkg / "usr/share/backgrounds/mate/abstract").mkdir(parents=True)
    photo(600, 800, 4).save(pkg / "usr/share/backgrounds/mate/abstract/Render.png")
    doc = pkg / "usr/share/doc/mate-backgrounds"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    return pkg


def _fake_plasma(root: Path) -> Path:
    pkg = root / "plasma-workspace-wallpapers"
    for name in ("Path", "Kokkini"):  # Kokkini is a render: not on the allow-list
        images = pkg / "usr/share/wallpapers" / name / "contents/images"
        images.mkdir(parents=True)
        photo(300, 400, 5).save(images / "400x300.png")
        photo(500, 700, 6).save(images / "700x500.png")  # largest file: the one used
        meta = {"KPlugin": {"License": "LGPLv3", "Name": name}}
        (pkg / "usr/share/wallpapers" / name / "metadata.json").write_text(json.dumps(meta))
    return pkg


def _fake_gcompris(root: Path, tmp: Path) -> Path | None:
    rcc_tool = Path(PySide6.__file__).parent / "Qt/libexec/rcc"
    if not rcc_tool.is_file():
        return None
    src = tmp / "qrc"
    files = {
        "gcompris/src/activities/erase/resource/fox.webp": photo(540, 960, 7),
        "gcompris/src/activities/lang/resource/words_sample/cartoon.webp": photo(600, 600, 8),
        "gcompris/src/activities/details/resource/image/Van_Gogh_1_background.webp": photo(
            500, 600, 9
        ),
    }
    for rel, im in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(src / rel, quality=90)
    qrc = "".join(f"<file>{rel}</file>" for rel in files)
    (src / "x.qrc").write_text(f'<RCC><qresource prefix="/">{qrc}</qresource></RCC>')
    pkg = root / "gcompris-qt-data"
    rcc_dir = pkg / "usr/share/gcompris-qt/rcc"
    rcc_dir.mkdir(parents=True)
    subprocess.run(
        [str(rcc_tool), "--binary", "x.qrc", "-o", str(rcc_dir / "erase.rcc")], cwd=src, check=True
    )
    doc = pkg / "usr/share/doc/gcompris-qt-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    return pkg


def test_build_on_fake_tree_is_filtered_licensed_split_and_idempotent(tmp_path: Path) -> None:
    debs = tmp_path / "debs/x"
    mate, plasma = _fake_mate(debs), _fake_plasma(debs)
    sk = tmp_path / "skdata"
    sk.mkdir()
    photo(512, 512, 10).save(sk / "astronaut.png")
    photo(64, 64, 11).save(sk / "coins.png")  # too small
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    buf = tmp_path / "china.jpg"
    photo(427, 640, 12).save(buf, quality=90)
    with zipfile.ZipFile(wheels / "scikit_learn-0.0-py3-none-any.whl", "w") as z:
        z.write(buf, "sklearn/datasets/images/china.jpg")

    cands = photos.mate_candidates(mate) + photos.plasma_candidates(plasma)
    cands += photos.skimage_candidates(sk) + photos.sklearn_candidates(wheels, fetch=False)
    gc = _fake_gcompris(debs, tmp_path)
    if gc is not None:
        gc_cands = photos.gcompris_candidates(gc)
        assert [c.path for c in gc_cands] == ["src/activities/erase/resource/fox.webp"]
        assert gc_cands[0].license.startswith("CC0-1.0")
        cands += gc_cands

    out = tmp_path / "out"
    m = photos.build(out, cands)
    by_path = {e["path"]: e for e in m["images"]}
    assert set(by_path) == {
        "/usr/share/backgrounds/mate/nature/Big.jpg",
        "/usr/share/backgrounds/mate/nature/Mid.jpg",
        "/usr/share/wallpapers/Path/contents/images/700x500.png",
        "skimage/data/astronaut.png",
        "sklearn/datasets/images/china.jpg",
    } | ({"src/activities/erase/resource/fox.webp"} if gc else set())
    big = by_path["/usr/share/backgrounds/mate/nature/Big.jpg"]
    assert (big["width"], big["height"]) == (800, 600)  # lossy and large: halved
    assert big["license"].startswith("CC-BY-SA-4.0")
    plasma_e = by_path["/usr/share/wallpapers/Path/contents/images/700x500.png"]
    assert (plasma_e["width"], plasma_e["height"]) == (700, 500)
    assert (
        plasma_e["license"]
        == "LGPLv3 (metadata.json); unknown (no matching stanza in debian/copyright)"
    )
    assert sum(m["skipped"].values()) == 2
    for e in m["images"]:
        arr = np.asarray(Image.open(out / e["file"]))
        assert arr.dtype == np.uint8 and arr.shape == (e["height"], e["width"], 3)
        assert e["split"] == e["file"].split("/")[0] in ("train", "val")
    assert photos.split_of("a") == photos.split_of("a")
    splits = [photos.split_of(f"g{i}") for i in range(2000)]
    assert 0.07 < splits.count("val") / len(splits) < 0.13

    mtimes = {f: f.stat().st_mtime_ns for f in out.rglob("*.png")}
    assert photos.build(out, cands)["images"] == m["images"]
    assert {f: f.stat().st_mtime_ns for f in out.rglob("*.png")} == mtimes

    stale = out / "train/stale.png"
    photo(300, 300).save(stale)
    shutil.rmtree(mate / "usr/share/backgrounds/mate/nature")
    m3 = photos.build(out, photos.plasma_candidates(plasma))
    assert not stale.exists() and len(m3["images"]) == 1
    assert sorted(out.rglob("*.png")) == [out / m3["images"][0]["file"]]


def test_transparent_images_are_skipped() -> None:
    im = photo(300, 300).convert("RGBA")
    a = np.asarray(im).copy()
    a[:100, :, 3] = 0
    data = io.BytesIO()
    Image.fromarray(a).save(data, format="PNG")
    arr, note = photos.prepare(data.getvalue(), "x.png")
    assert arr is None and note == "has transparency"


@pytest.mark.parametrize("size", [(256, 300), (2100, 300)])
def test_prepare_keeps_min_size_and_caps_long_side(size: tuple[int, int]) -> None:
    data = io.BytesIO()
    photo(size[1], size[0]).save(data, format="PNG")
    arr, _ = photos.prepare(data.getvalue(), "x.png")
    assert arr is not None
    assert arr.shape[:2] == ((300, 256) if size[0] == 256 else (293, 2048))


def test_lomiri_photos_take_their_licence_from_the_upstream_path(tmp_path: Path) -> None:
    root = tmp_path / "lomiri-wallpapers-16.04"
    doc = root / "usr/share/doc/lomiri-wallpapers-16.04"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-3\n\n"
        "Files: 16.04/seeding_by_Clements_Engelhardt.jpg\nCopyright: C. E.\nLicense: CC0-1.0\n\n"
        "Files: 16.04/Bridge_by_Sander_Klootwijk.jpg\nCopyright: S. K.\nLicense: CC-BY-SA-4.0\n"
    )
    base = root / "usr/share/backgrounds"
    base.mkdir(parents=True)
    for stem in ("seeding_by_Clements_Engelhardt", "Bridge_by_Sander_Klootwijk", "umang_by_X"):
        Image.new("RGB", (300, 300)).save(base / f"{stem}.jpg")
    cands = photos.lomiri_candidates(root, "lomiri-wallpapers-16.04")
    found = {Path(c.path).stem: c.license for c in cands}
    assert set(found) == {"seeding_by_Clements_Engelhardt", "Bridge_by_Sander_Klootwijk"}
    assert found["seeding_by_Clements_Engelhardt"].startswith("CC0-1.0 (debian/copyright, per-file")
    assert found["Bridge_by_Sander_Klootwijk"].startswith("CC-BY-SA-4.0")
