"""Build Studio's photo dataset (super-resolution training) from registry packages.

Sources, all fetched with the ordinary clients and unpacked under a cache folder:

* Debian ``gcompris-qt-data``: photos inside the Qt ``.rcc`` bundles (an explicit allow-list of
  photo folders; paintings, cartoons, icons, SVG and puzzle pieces are left out);
* Debian ``mate-backgrounds`` (``nature/`` only) and ``plasma-workspace-wallpapers`` (an
  allow-list of the wallpapers that are photographs; renders are left out);
* Debian ``lomiri-wallpapers-16.04`` / ``-20.04``: an allow-list of the contest wallpapers
  that are photographs (per-file CC-BY / CC-BY-SA / CC0; added for studio-inpaint v2);
* PyPI ``scikit-image``: photos bundled in the installed wheel (never fetched at run time);
* PyPI ``scikit-learn``: ``china.jpg`` and ``flower.jpg`` read from the wheel (``pip download``).

Output: ``OUT/{train,val}/*.png`` (RGB uint8) and ``OUT/manifest.json``. Split 90/10 by a hash of a
group key (source package + lower-cased file stem), so one subject found under two paths of a
package never straddles the split. Re-runnable and idempotent::

    python -m studio.training.photos --out $STUDIO_CACHE/photos
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from studio.atomic_write import write_text_atomic
from studio.paths import data_cache_dir
from studio.training import gcompris

MIN_SHORT_SIDE = 256
MAX_LONG_SIDE = 2048
#: lossy images at least this large on the short side are halved: it removes most JPEG/WebP
#: artefacts from the HR targets (these wallpapers and GCompris photos are ~0.3-1.5 bits/pixel)
CLEAN_HALVE_SHORT_SIDE = 1000
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")

GCOMPRIS_INCLUDE = (
    r"src/activities/clickgame/resource/sea\d+\.",
    r"src/activities/erase/resource/[^/]+$",
    r"src/activities/explore_(farm|world)_animals/resource/animals/",
    r"src/activities/explore_monuments/resource/",
    r"src/activities/explore_world_music/resource/music/",
    r"src/activities/categorization/resource/images/",
    r"src/activities/details/resource/image/[^/]+_background\.",
)
#: paintings that share the photo folders above (they belong to the paintings data set)
GCOMPRIS_EXCLUDE = r"(?i)gogh|tanguy|auvers"
PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
SKIMAGE_PHOTOS = {
    "astronaut.png": "public domain (NASA)",
    "brick.png": "CC0-1.0 (CC0Textures)",
    "camera.png": "CC0-1.0 (Lav Varshney)",
    "chelsea.png": "CC0-1.0 (Stefan van der Walt)",
    "coffee.png": "CC0-1.0 (Rachel Michetti)",
    "coins.png": "no known copyright restrictions (scikit-image docs)",
    "grass.png": "CC0-1.0 (CC0Textures)",
    "gravel.png": "CC0-1.0 (CC0Textures)",
    "hubble_deep_field.jpg": "public domain (NASA)",
    "ihc.png": "no known copyright restrictions (scikit-image docs)",
    "motorcycle_left.png": "unstated (Middlebury 2014 stereo benchmark)",
    "retina.jpg": "CC0-1.0",
    "rocket.jpg": "public domain (SpaceX)",
}
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


@dataclass(frozen=True)
class Candidate:
    """One source image before filtering."""

    source: str  # package name
    path: str  # original path (inside the package)
    load: Callable[[], bytes]
    license: str
    group: str  # split key


def _group(source: str, path: str) -> str:
    stem = Path(path).stem.lower().removesuffix("_background")
    return f"{source}:{stem}"


def split_of(group: str) -> str:
    """Deterministic 90/10 split from a SHA-1 of the group key."""
    return "val" if int(hashlib.sha1(group.encode()).hexdigest(), 16) % 10 == 0 else "train"


def ensure_deb(pkg: str, debs: Path, fetch: bool = True) -> Path | None:
    """Unpacked root of Debian package ``pkg`` under ``debs/x/pkg`` (apt-get download if needed)."""
    root = debs / "x" / pkg
    if root.is_dir():
        return root
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found and fetch:
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", pkg], cwd=debs, check=False)
        found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found:
        print(f"[photos] {pkg}: no .deb (run `apt-get update` first?); skipped", file=sys.stderr)
        return None
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(root)], check=True)
    return root


def _copyright(root: Path, pkg: str) -> list[gcompris.Dep5Stanza]:
    f = root / "usr/share/doc" / pkg / "copyright"
    return gcompris.parse_dep5(f.read_text(errors="replace")) if f.is_file() else []


def _license(stanzas: list[gcompris.Dep5Stanza], path: str) -> str:
    st = gcompris.dep5_license(stanzas, path)
    if st is None:
        return "unknown (no matching stanza in debian/copyright)"
    where = "catch-all 'Files: *' stanza" if st.patterns == ("*",) else "per-file stanza"
    return f"{st.license} (debian/copyright, {where})"


def gcompris_candidates(root: Path) -> list[Candidate]:
    """Photos inside ``usr/share/gcompris-qt/rcc/*.rcc`` of an unpacked ``gcompris-qt-data``."""
    rcc_dir = root / "usr/share/gcompris-qt/rcc"
    stanzas = _copyright(root, "gcompris-qt-data")
    include = [re.compile(p) for p in GCOMPRIS_INCLUDE]
    out = []
    for _bundle, rel, data in gcompris.iter_rcc_files(rcc_dir):
        src = gcompris.source_path(rel)
        if not any(p.search(src) for p in include) or re.search(GCOMPRIS_EXCLUDE, src):
            continue
        out.append(
            Candidate(
                "gcompris-qt-data",
                src,
                (lambda d=data: d),
                _license(stanzas, src),
                _group("gcompris-qt-data", src),
            )
        )
    return out


def _file_candidates(root: Path, pkg: str, files: list[Path], lic: Callable[[str], str]):
    out = []
    for f in files:
        rel = str(f.relative_to(root))
        out.append(Candidate(pkg, "/" + rel, f.read_bytes, lic(rel), _group(pkg, rel)))
    return out


def mate_candidates(root: Path) -> list[Candidate]:
    """``nature/`` photos of an unpacked ``mate-backgrounds`` (abstract/desktop are renders)."""
    base = root / "usr/share/backgrounds/mate"
    stanzas = _copyright(root, "mate-backgrounds")
    files = sorted((base / "nature").glob("*.jpg"))
    return _file_candidates(
        root, "mate-backgrounds", files, lambda rel: _license(stanzas, rel.split("mate/", 1)[-1])
    )


def plasma_candidates(root: Path) -> list[Candidate]:
    """The largest image of each photographic wallpaper of ``plasma-workspace-wallpapers``."""
    stanzas = _copyright(root, "plasma-workspace-wallpapers")
    files = []
    meta_lic: dict[str, str] = {}
    for name in PLASMA_PHOTOS:
        d = root / "usr/share/wallpapers" / name
        imgs = sorted((d / "contents/images").glob("*"), key=lambda p: p.stat().st_size)
        if not imgs:
            continue
        files.append(imgs[-1])
        meta = d / "metadata.json"
        if meta.is_file():
            meta_lic[name] = json.loads(meta.read_text()).get("KPlugin", {}).get("License", "")

    def lic(rel: str) -> str:
        name = rel.split("wallpapers/", 1)[1].split("/", 1)[0]
        deb = _license(stanzas, rel)
        return f"{meta_lic[name]} (metadata.json); {deb}" if meta_lic.get(name) else deb

    return _file_candidates(root, "plasma-workspace-wallpapers", files, lic)


def skimage_candidates(data_dir: Path | None = None) -> list[Candidate]:
    """Photos shipped in the installed scikit-image wheel (files absent locally are skipped)."""
    if data_dir is None:
        try:
            import skimage
        except ImportError:
            return []
        data_dir = Path(skimage.__file__).parent / "data"
    out = []
    for name, lic in SKIMAGE_PHOTOS.items():
        f = data_dir / name
        if f.is_file():
            out.append(
                Candidate("scikit-image", f"skimage/data/{name}", f.read_bytes, lic, name.lower())
            )
    return out


def sklearn_candidates(wheels: Path, fetch: bool = True) -> list[Candidate]:
    """``china.jpg`` and ``flower.jpg`` read from a scikit-learn wheel (``pip download``)."""
    found = sorted(wheels.glob("scikit_learn-*.whl"))
    if not found and fetch:
        wheels.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels)]
        subprocess.run([*cmd, "scikit-learn"], check=False)
        found = sorted(wheels.glob("scikit_learn-*.whl"))
    if not found:
        return []
    out = []
    with zipfile.ZipFile(found[-1]) as z:
        for name in SKLEARN_PHOTOS:
            member = f"sklearn/datasets/images/{name}"
            if member in z.namelist():
                data = z.read(member)
                out.append(
                    Candidate(
                        "scikit-learn",
                        member,
                        (lambda d=data: d),
                        "CC-BY-2.0 (sklearn/datasets/images/README.txt)",
                        f"scikit-learn:{name}",
                    )
                )
    return out


def prepare(data: bytes, path: str) -> tuple[np.ndarray | None, str]:
    """Decode and normalise one image: ``(HxWx3 uint8 RGB or None, note)``."""
    im = Image.open(io.BytesIO(data))
    im.load()
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        alpha = np.asarray(im.convert("RGBA"))[..., 3]
        if (alpha < 250).mean() > 0.01:
            return None, "has transparency"
    im = im.convert("RGB")
    w, h = im.size
    if min(w, h) < MIN_SHORT_SIDE:
        return None, f"too small {w}x{h}"
    note = f"{w}x{h}"
    factor = 1.0
    if path.lower().endswith(LOSSY_SUFFIXES) and min(w, h) >= CLEAN_HALVE_SHORT_SIDE:
        factor = 0.5
    factor = min(factor, MAX_LONG_SIDE / max(w, h))
    if factor < 1.0:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        note += f" -> {size[0]}x{size[1]} (Lanczos)"
    return np.asarray(im), note


def _out_name(c: Candidate) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", Path(c.path).stem).strip("_")[:40]
    tag = {"gcompris-qt-data": "gcompris", "plasma-workspace-wallpapers": "plasma"}.get(
        c.source, c.source.replace("-backgrounds", "")
    )
    digest = hashlib.sha1(f"{c.source}:{c.path}".encode()).hexdigest()[:8]
    return f"{tag}-{slug}-{digest}.png"


#: photographs among the Ubuntu/Lomiri contest wallpapers (umang, Fossa, Infinite-Sea and
#: Painting-Colors are renders or paintings)
LOMIRI_PHOTOS = {
    "lomiri-wallpapers-16.04": (
        "Bridge_by_Sander_Klootwijk",
        "Dragonfly_by_Bolly",
        "Picture_0B_by_freespace",
        "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede",
        "aitzgorri_by_Aitzol_Berasategi",
        "analogpattern_by_Peter_Nerlich",
        "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi",
        "greentock_by_Peter_Nerlich",
        "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi",
    ),
    "lomiri-wallpapers-20.04": ("Kleiber_by_Lukas_Baubkus",),
}


def lomiri_candidates(root: Path, pkg: str) -> list[Candidate]:
    """The photographs of an unpacked ``lomiri-wallpapers-16.04`` or ``-20.04``; licences come
    from the upstream paths (``16.04/NAME.jpg``) of the package's DEP-5 copyright file."""
    stanzas = _copyright(root, pkg)
    release = pkg.rsplit("-", 1)[-1]
    base = root / "usr/share/backgrounds"
    files = [base / f"{stem}.jpg" for stem in LOMIRI_PHOTOS[pkg]]
    files = [f for f in files if f.is_file()]
    return _file_candidates(
        root, pkg, files, lambda rel: _license(stanzas, f"{release}/{Path(rel).name}")
    )


def build(out: Path, candidates: list[Candidate]) -> dict:
    """Write ``out/{train,val}/*.png`` and ``out/manifest.json``; return the manifest."""
    manifest_file = out / "manifest.json"
    old = {}
    if manifest_file.is_file():
        old = {e["file"]: e for e in json.loads(manifest_file.read_text()).get("images", [])}
    entries, skipped = [], Counter()
    for c in sorted(candidates, key=lambda c: (c.source, c.path)):
        data = c.load()
        split = split_of(c.group)
        name = f"{split}/{_out_name(c)}"
        sha = hashlib.sha1(data).hexdigest()
        prev = old.get(name)
        if prev and prev.get("source_sha1") == sha and (out / name).is_file():
            entries.append(prev)
            continue
        arr, note = prepare(data, c.path)
        if arr is None:
            skipped[f"{c.source}: {note.split(' ')[0]} {note.split(' ')[1]}"] += 1
            continue
        (out / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(out / name, compress_level=3)
        entries.append(
            {
                "file": name,
                "split": split,
                "source": c.source,
                "path": c.path,
                "license": c.license,
                "width": int(arr.shape[1]),
                "height": int(arr.shape[0]),
                "note": note,
                "source_sha1": sha,
            }
        )
    keep = {e["file"] for e in entries}
    for split in ("train", "val"):
        for f in sorted((out / split).glob("*.png")) if (out / split).is_dir() else []:
            if f"{split}/{f.name}" not in keep:
                f.unlink()
    counts = Counter((e["source"], e["split"]) for e in entries)
    manifest = {
        "split_rule": "val if int(sha1(group).hexdigest(), 16) % 10 == 0; "
        "group = '<package>:<lower-case file stem>' (GCompris/Debian) or file name",
        "counts": {f"{s}/{sp}": n for (s, sp), n in sorted(counts.items())},
        "skipped": dict(sorted(skipped.items())),
        "images": entries,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(manifest_file, json.dumps(manifest, indent=1))
    return manifest


def collect(
    debs: Path, wheels: Path, fetch: bool = True, sources: tuple[str, ...] = ()
) -> list[Candidate]:
    """All candidates from the packages (missing packages are reported and skipped); the
    optional ``sources`` ("lomiri") were added after the first data set was built."""
    cands: list[Candidate] = []
    debian: list[tuple[str, Callable[[Path], list[Candidate]]]] = [
        ("gcompris-qt-data", gcompris_candidates),
        ("mate-backgrounds", mate_candidates),
        ("plasma-workspace-wallpapers", plasma_candidates),
    ]
    if "lomiri" in sources:
        debian += [(pkg, lambda r, pkg=pkg: lomiri_candidates(r, pkg)) for pkg in LOMIRI_PHOTOS]
    for pkg, fn in debian:
        root = ensure_deb(pkg, debs, fetch)
        if root is not None:
            cands += fn(root)
    cands += skimage_candidates()
    cands += sklearn_candidates(wheels, fetch)
    return cands


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=data_cache_dir() / "photos")
    ap.add_argument("--debs", type=Path, default=data_cache_dir() / "debs")
    ap.add_argument("--wheels", type=Path, default=data_cache_dir() / "wheels")
    ap.add_argument("--no-fetch", action="store_true", help="use only what is already cached")
    ap.add_argument(
        "--with-lomiri",
        action="store_true",
        help="add the Lomiri wallpaper photos (studio-inpaint v2; the SR models used the set "
        "without them)",
    )
    args = ap.parse_args(argv)
    sources = ("lomiri",) if args.with_lomiri else ()
    manifest = build(args.out, collect(args.debs, args.wheels, not args.no_fetch, sources))
    by_source: Counter = Counter()
    for key, n in manifest["counts"].items():
        print(f"{key:45s} {n:4d}")
        by_source[key.split("/")[-1]] += n
    print(f"total: {sum(by_source.values())} ({dict(by_source)})")
    for key, n in manifest["skipped"].items():
        print(f"skipped {key}: {n}")


if __name__ == "__main__":
    main()
