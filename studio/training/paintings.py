"""Extract the public-domain paintings bundled in GCompris as whole images, with credits.

Debian's ``gcompris-qt-data`` ships paintings in three "babymatch"-style activities, each level a
QML board file (``resource/board/boardN_M.qml``) listing images with centre positions ``x``, ``y``
given as fractions of the background's size (babymatch's ``DropAnswerItem``: ``x = posX *
width - w/2``); pieces keep their pixel size relative to the background's source size:

* ``paintings``: 22 boards (21 paintings and a photo of Michelangelo's Pieta) cut into jigsaw
  pieces (RGBA) over an empty ``bg.svg`` frame of the size the board declares (702x515). We paste
  every piece at its answer position, nudge it by up to 1 px where that makes its overlaps agree
  with its neighbours (:func:`refine`: the 3-decimal positions leave pieces 1 px off), average the
  anti-aliased overlaps by alpha and crop to the pieces' bounding box.
* ``details``: 8 Van Gogh paintings as whole backgrounds (the pieces are details to find, already
  visible in the background), besides 12 monument photos that we skip.
* ``babyshapes`` (level 7): 5 paintings whose background has white holes that the pieces fill.

Credits (artist, title, year) come from :data:`CATALOGUE`, checked against each board's caption
(``instruction``, stored raw in the manifest); GCompris' captions have a few typos and one
impossible date, corrected there. Licences: the ``debian/copyright`` stanza of each image and the
activity's own ``resource/image/README``.

Output: ``OUT/<id>.png`` (RGB) and ``OUT/manifest.json``. Quality stats per image: ``coverage``
(1 - fraction of pixels left white and uncovered: gaps between jigsaw pieces, unfilled holes;
for ``details`` it also counts white paint), ``seam_rms`` (RMS colour difference, 0..255, of each
piece against what lies under it, the other pieces or the background outside holes; a misplaced
piece gives a large value; ``None`` where pieces overlap nothing, as in babyshapes), ``moved``
(pieces nudged by :func:`refine`). Re-runnable::

    python -m studio.training.paintings --out $STUDIO_CACHE/paintings
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from studio.paths import data_cache_dir
from studio.pixels import quantize
from studio.training import gcompris
from studio.training.photos import ensure_deb

PACKAGE = "gcompris-qt-data"
ACTIVITIES = ("paintings", "details", "babyshapes")
#: how far :func:`refine` may move a jigsaw piece from its nominal position (px)
REFINE_SHIFT = 1
#: background pixels whiter than this (min channel, 0..1) are the holes babyshapes punches out
HOLE_WHITE = 0.9
#: minimum overlap (sum of alpha weights, ~px) for a piece's mismatch to count
MIN_OVERLAP = 20.0


@dataclass(frozen=True)
class Entry:
    """Curated credit for one board: ``year`` is a display string (``None`` when unknown)."""

    id: str
    artist: str
    title: str
    year: str | None
    kind: str = "painting"


def _e(board: str, *args: str | None, kind: str = "painting") -> tuple[str, Entry]:
    return board, Entry(*args, kind=kind)  # type: ignore[arg-type]


#: (activity/board stem) -> credit. Corrections to the captions: "Hokusa" and "Brugel" (typos),
#: Bazille's first name, Bellini (only a landscape detail is shipped), the Great Wave's date
#: (caption: 1823-1829; published c. 1830-1832) and Hiroshige's Inokashira (caption: 1760-70,
#: before Hiroshige's birth in 1797; left unknown).
CATALOGUE: dict[str, Entry] = dict(
    [
        _e("paintings/board1_0", "renoir-moulin-de-la-galette", "Pierre-Auguste Renoir",
           "Bal du moulin de la Galette", "1876"),
        _e("paintings/board2_0", "arcimboldo-spring", "Giuseppe Arcimboldo", "Spring", "1573"),
        _e("paintings/board3_0", "arcimboldo-librarian", "Giuseppe Arcimboldo", "The Librarian",
           "1566"),
        _e("paintings/board4_0", "hokusai-oiran-and-kamuro", "Katsushika Hokusai",
           "Oiran and Kamuro", None),
        _e("paintings/board5_0", "hokusai-woman-holding-fan", "Katsushika Hokusai",
           "Woman Holding a Fan", None),
        _e("paintings/board6_0", "hokusai-ejiri-suruga", "Katsushika Hokusai",
           "Ejiri in Suruga Province", "1830-1833"),
        _e("paintings/board7_0", "hokusai-great-wave", "Katsushika Hokusai",
           "The Great Wave off Kanagawa", "c. 1830-1832"),
        _e("paintings/board8_0", "hiroshige-inokashira-snow", "Utagawa Hiroshige",
           "The Benzaiten Shrine at Inokashira in Snow", None),
        _e("paintings/board9_0", "hiroshige-horse-mackerel-prawn", "Utagawa Hiroshige",
           "Horse-mackerel and Prawn", "1840"),
        _e("paintings/board10_0", "hokusai-ryogoku-bridge", "Katsushika Hokusai",
           "Viewing Sunset over the Ryogoku Bridge from the Ommaya Embankment", "1830"),
        _e("paintings/board11_0", "hokusai-poppies", "Katsushika Hokusai", "Poppies",
           "1833-1834"),
        _e("paintings/board12_0", "hokusai-kazusa-sea-route", "Katsushika Hokusai",
           "Kazusa Sea Route", "1830"),
        _e("paintings/board13_0", "michelangelo-pieta", "Michelangelo", "Pietà", "1499",
           kind="sculpture"),
        _e("paintings/board14_0", "da-vinci-mona-lisa", "Leonardo da Vinci", "Mona Lisa",
           "1503-1519"),
        _e("paintings/board15_0", "bellini-pesaro-altarpiece", "Giovanni Bellini",
           "Pesaro Altarpiece (detail)", "1475-1485"),
        _e("paintings/board16_0", "durer-lion", "Albrecht Dürer", "Lion", "1494"),
        _e("paintings/board17_0", "bruegel-harvesters", "Pieter Bruegel the Elder",
           "The Harvesters", "1565"),
        _e("paintings/board18_0", "renoir-girls-at-the-piano", "Pierre-Auguste Renoir",
           "Girls at the Piano", "1892"),
        _e("paintings/board19_0", "kandinsky-composition-viii", "Wassily Kandinsky",
           "Composition VIII", "1923"),
        _e("paintings/board20_0", "bazille-ramparts-aigues-mortes", "Frédéric Bazille",
           "The Ramparts at Aigues-Mortes", "1867"),
        _e("paintings/board21_0", "cassatt-summertime", "Mary Cassatt", "Summertime", "1894"),
        _e("paintings/board22_0", "van-gogh-village-street-auvers", "Vincent van Gogh",
           "Village Street in Auvers", "1890"),
        _e("details/board1_0", "van-gogh-saint-paul-hospital", "Vincent van Gogh",
           "Entrance Hall of Saint-Paul Hospital", "1889"),
        _e("details/board2_0", "van-gogh-langlois-bridge", "Vincent van Gogh",
           "The Bridge of Langlois at Arles with a Lady with Umbrella", "1888"),
        _e("details/board3_0", "van-gogh-church-auvers", "Vincent van Gogh",
           "The Church at Auvers-sur-Oise", "1890"),
        _e("details/board4_0", "van-gogh-painter-on-the-road", "Vincent van Gogh",
           "Painter on His Way to Work", "1888"),
        _e("details/board5_0", "van-gogh-harvest", "Vincent van Gogh", "The Harvest", "1888"),
        _e("details/board6_0", "van-gogh-cafe-terrace", "Vincent van Gogh",
           "Cafe Terrace at Night", "1888"),
        _e("details/board7_0", "van-gogh-night-cafe", "Vincent van Gogh", "The Night Café",
           "1888"),
        _e("details/board8_0", "van-gogh-pere-tanguy", "Vincent van Gogh",
           "Portrait of Père Tanguy", "1887-1888"),
        _e("babyshapes/board7_0", "gauguin-arearea", "Paul Gauguin", "Arearea", "1892"),
        _e("babyshapes/board7_1", "bruegel-peasant-wedding", "Pieter Bruegel the Elder",
           "The Peasant Wedding", "1568"),
        _e("babyshapes/board7_2", "lady-and-the-unicorn", "Anonymous (Flemish workshop)",
           "The Lady and the Unicorn", "15th century", kind="tapestry"),
        _e("babyshapes/board7_3", "van-gogh-bedroom-arles", "Vincent van Gogh",
           "Bedroom in Arles", "1888"),
        _e("babyshapes/board7_4", "bosschaert-flower-still-life", "Ambrosius Bosschaert the Elder",
           "Flower Still Life", "1614"),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class Piece:
    file: str  # relative to the activity's resource/ folder, e.g. "image/GreatWave_a1.webp"
    x: float  # centre, as a fraction of the background's width
    y: float


@dataclass(frozen=True)
class Board:
    """One level of a babymatch activity (only what reassembly needs)."""

    caption: str | None
    background: str | None
    size: tuple[int, int] | None  # declared background size (SVG frames)
    pieces: tuple[Piece, ...]


def parse_board(text: str) -> Board:
    """Parse a babymatch board file (a QML ``QtObject`` with a JSON-like ``levels`` list)."""
    cap = re.search(r'instruction\s*:\s*qsTr\(\s*"((?:[^"\\]|\\.)*)"\s*\)', text)
    body = text[text.find("levels") :]
    background, size, pieces = None, None, []
    for obj in re.findall(r"\{([^{}]*)\}", body):
        fields = dict(re.findall(r'"(\w+)"\s*:\s*"?([^",\n]*?)"?\s*(?:,|\n|$)', obj))
        if fields.get("type") == "SHAPE_BACKGROUND_IMAGE":
            background = fields["pixmapfile"]
            if "width" in fields and "height" in fields:
                size = (int(float(fields["width"])), int(float(fields["height"])))
        elif "type" not in fields and "x" in fields:
            pieces.append(Piece(fields["pixmapfile"], float(fields["x"]), float(fields["y"])))
    return Board(cap.group(1) if cap else None, background, size, tuple(pieces))


def _rgba(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), dtype=np.float64) / 255.0


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation of a 2-D mask by a (2r+1)^2 square."""
    p = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= p[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return out


def _mismatch(
    im: np.ndarray, x0: int, y0: int, ref_w: np.ndarray, ref_rgb: np.ndarray
) -> tuple[float, float]:
    """(sum of weighted squared colour difference, sum of weights) of an RGBA piece at (x0, y0)
    against a reference layer (``ref_rgb`` is weighted by ``ref_w``)."""
    h, w = im.shape[:2]
    rw = ref_w[y0 : y0 + h, x0 : x0 + w]
    ref = ref_rgb[y0 : y0 + h, x0 : x0 + w] / np.maximum(rw, 1e-9)[..., None]
    wgt = np.minimum(rw, 1.0) * im[..., 3]
    return float((wgt * ((ref - im[..., :3]) ** 2).sum(-1)).sum()), float(wgt.sum())


def refine(
    ims: list[np.ndarray],
    pos: list[tuple[int, int]],
    shape: tuple[int, int],
    max_shift: int = REFINE_SHIFT,
    passes: int = 3,
) -> tuple[list[tuple[int, int]], int]:
    """Nudge jigsaw pieces by up to ``max_shift`` px to agree with their neighbours' overlaps.

    The boards give centres with 3 decimals (+-0.35 px at 702 px) and pieces have odd sizes, so
    rounding leaves pieces 1 px off; a piece moves only if that cuts its overlap mismatch by
    10 %. Returns (positions, number of pieces moved from the nominal position).
    """
    pos = list(pos)
    acc, rgb = np.zeros(shape), np.zeros((*shape, 3))

    def add(i: int, sign: float) -> None:
        (x0, y0), im = pos[i], ims[i]
        h, w = im.shape[:2]
        acc[y0 : y0 + h, x0 : x0 + w] += sign * im[..., 3]
        rgb[y0 : y0 + h, x0 : x0 + w] += sign * im[..., :3] * im[..., 3:]

    for i in range(len(ims)):
        add(i, 1.0)
    nominal = list(pos)
    for _ in range(passes):
        changed = False
        for i, im in enumerate(ims):
            add(i, -1.0)
            x0, y0 = pos[i]
            err, wsum = _mismatch(im, x0, y0, acc, rgb)
            best = (err / wsum if wsum >= MIN_OVERLAP else 0.0, x0, y0)
            for dy in range(-max_shift, max_shift + 1):
                for dx in range(-max_shift, max_shift + 1):
                    e, ws = _mismatch(im, x0 + dx, y0 + dy, acc, rgb)
                    if ws >= MIN_OVERLAP and e / ws < 0.9 * best[0]:
                        best = (e / ws, x0 + dx, y0 + dy)
            changed |= best[1:] != (x0, y0)
            pos[i] = best[1:]
            add(i, 1.0)
        if not changed:
            break
    return pos, sum(p != q for p, q in zip(pos, nominal, strict=True))


def assemble(
    board: Board, read: Callable[[str], bytes]
) -> tuple[np.ndarray, dict[str, float | None]]:
    """Reassemble a board -> (HxWx3 uint8 RGB, quality stats).

    ``read(rel)`` returns the bytes of a file relative to the activity's ``resource/`` folder.
    A raster background is the canvas and pieces are composited over it; with an SVG frame the
    canvas is the declared size, pieces are aligned by :func:`refine`, overlapping piece edges
    are averaged by alpha and the result is cropped to where pieces cover it.
    """
    raster_bg = board.background is not None and not board.background.endswith((".svg", ".svgz"))
    ims = [_rgba(read(p.file)) for p in board.pieces]
    if raster_bg:
        bg = _rgba(read(board.background))[..., :3]
        h, w = bg.shape[:2]
    elif board.size is not None:
        w, h = board.size
    else:
        raise ValueError("board has neither a raster background nor a declared size")
    pad = max([max(im.shape[:2]) for im in ims] + [0]) + REFINE_SHIFT
    shape = (h + 2 * pad, w + 2 * pad)
    pos = [
        (pad + round(p.x * w - im.shape[1] / 2), pad + round(p.y * h - im.shape[0] / 2))
        for p, im in zip(board.pieces, ims, strict=True)
    ]
    moved = 0
    if not raster_bg:
        pos, moved = refine(ims, pos, shape)
    acc, rgb = np.zeros(shape), np.zeros((*shape, 3))
    for (x0, y0), im in zip(pos, ims, strict=True):
        ph, pw = im.shape[:2]
        acc[y0 : y0 + ph, x0 : x0 + pw] += im[..., 3]
        rgb[y0 : y0 + ph, x0 : x0 + pw] += im[..., :3] * im[..., 3:]
    # seam check: each piece against what lies under it (the other pieces, or the background
    # outside GCompris' white holes); a misplaced piece gives a large RMS difference
    if raster_bg:
        inner = (slice(pad, pad + h), slice(pad, pad + w))
        # babyshapes punches the pieces' shapes out of the background in white; their
        # anti-aliased rims are neither painting nor hole, so they count as hole
        holes = bg.min(-1) > HOLE_WHITE
        rim = _dilate(holes, 2)
        ref_w = np.zeros(shape)
        ref_w[inner] = ~rim
        ref_rgb = np.zeros((*shape, 3))
        ref_rgb[inner] = bg * ref_w[inner][..., None]
    err = wsum = 0.0
    for (x0, y0), im in zip(pos, ims, strict=True):
        if not raster_bg:
            ph, pw = im.shape[:2]
            ref_w, ref_rgb = acc.copy(), rgb.copy()
            ref_w[y0 : y0 + ph, x0 : x0 + pw] -= im[..., 3]
            ref_rgb[y0 : y0 + ph, x0 : x0 + pw] -= im[..., :3] * im[..., 3:]
        e, ws = _mismatch(im, x0, y0, ref_w, ref_rgb)
        err, wsum = err + e, wsum + ws
    seam = float(np.sqrt(err / max(wsum, 1e-9) / 3) * 255) if wsum >= MIN_OVERLAP else None
    mean = rgb / np.maximum(acc, 1e-9)[..., None]
    if raster_bg:
        a = acc[inner]
        cover = np.where(rim & (a > 0.02), 1.0, np.clip(a, 0.0, 1.0))[..., None]
        out = bg * (1.0 - cover) + mean[inner] * cover
        coverage = 1.0 - float((holes & (a < 0.5)).mean())
    else:
        ys, xs = np.nonzero(acc > 0.5)
        crop = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        cover = np.clip(acc[crop], 0.0, 1.0)[..., None]
        out = mean[crop] * cover + (1.0 - cover)  # white where nothing covers (corners)
        coverage = float((acc[crop] > 0.5).mean())
    img = quantize(out, np.uint8)
    stats = {
        "coverage": round(coverage, 5),
        "seam_rms": None if seam is None else round(seam, 2),
        "moved": moved,
        "overlap_px": round(wsum),
    }
    return img, stats


def _readme_licences(text: str) -> dict[str, str]:
    """file name -> "License (Comment)" from an activity's ``resource/image/README`` blocks."""
    out: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        files, key = [], None
        for line in block.splitlines():
            m = re.match(r"^(\w+):\s*(.*)$", line)
            if m:
                key = m.group(1).lower()
                fields[key] = [m.group(2).strip()] if m.group(2).strip() else []
            elif re.fullmatch(r"\s*[\w.+-]+\.(webp|png|jpe?g|svg)\s*", line):
                files.append(line.strip())
            elif key and line.strip():
                fields[key].append(line.strip())
        if "license" not in fields:
            continue
        comment = " ".join(fields.get("comment", []))
        note = " ".join(fields["license"]) + (f" ({comment})" if comment else "")
        out.update(dict.fromkeys(files, note))
    return out


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _caption_matches(entry: Entry, caption: str | None) -> bool:
    """A sanity check that the catalogue row belongs to this board (a title word > 3 letters)."""
    words = re.findall(r"\w+", _fold(entry.title))
    return caption is not None and any(w in _fold(caption) for w in words if len(w) > 3)


def _package_version(root: Path) -> str:
    log = root / "usr/share/doc" / PACKAGE / "changelog.Debian.gz"
    if not log.is_file():
        return "?"
    m = re.match(r"\S+ \(([^)]+)\)", gzip.decompress(log.read_bytes()).decode(errors="replace"))
    return m.group(1) if m else "?"


def extract(root: Path, out: Path) -> list[dict]:
    """Reassemble every catalogued painting of an unpacked ``gcompris-qt-data`` into ``out``."""
    rcc_dir = root / "usr/share/gcompris-qt/rcc"
    cfile = root / "usr/share/doc" / PACKAGE / "copyright"
    stanzas = gcompris.parse_dep5(cfile.read_text(errors="replace")) if cfile.is_file() else []
    version = _package_version(root)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for activity in ACTIVITIES:
        with gcompris.RccBundle(rcc_dir / f"{activity}.rcc") as bundle:
            base = f"gcompris/src/activities/{activity}/resource/"
            has_readme = base + "image/README" in bundle.files()
            upstream = (
                _readme_licences(bundle.read(base + "image/README").decode()) if has_readme else {}
            )
            for key, entry in CATALOGUE.items():
                if not key.startswith(activity + "/"):
                    continue
                rel = f"{base}board/{key.split('/', 1)[1]}.qml"
                board = parse_board(bundle.read(rel).decode())
                if not _caption_matches(entry, board.caption):
                    print(f"[paintings] {key}: caption {board.caption!r} does not match "
                          f"{entry.title!r}", file=sys.stderr)  # fmt: skip
                img, stats = assemble(board, lambda f, b=base: bundle.read(b + f))
                Image.fromarray(img).save(out / f"{entry.id}.png", optimize=True)
                files = [board.background] if board.background else []
                files += [p.file for p in board.pieces]
                main = board.pieces[0].file if activity == "paintings" else board.background
                src = gcompris.source_path(base + main)
                st = gcompris.dep5_license(stanzas, src)
                records.append(
                    {
                        **asdict(entry),
                        "caption": board.caption,
                        "licence": st.license if st else "unknown",
                        "copyright": st.copyright if st else "",
                        "upstream_licence": upstream.get(Path(main).name, ""),
                        "source": f"{PACKAGE} {version} /usr/share/gcompris-qt/rcc/"
                        f"{activity}.rcc: {gcompris.source_path(rel)}",
                        "activity": activity,
                        "files": files,
                        "width": img.shape[1],
                        "height": img.shape[0],
                        "pieces": len(board.pieces),
                        **stats,
                    }
                )
                print(f"[paintings] {entry.id}: {img.shape[1]}x{img.shape[0]}, "
                      f"{len(board.pieces)} pieces, {stats}")  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    return records


# -- style presets -------------------------------------------------------------------------------

#: paintings offered as arbitrary-style presets, picked by eye from previews of all 35 for varied
#: looks (style-vector distance from each pick to its nearest other pick: 1.8-2.9)
PRESET_IDS = (
    "hokusai-great-wave",
    "hiroshige-inokashira-snow",
    "hokusai-oiran-and-kamuro",
    "hokusai-ejiri-suruga",
    "van-gogh-cafe-terrace",
    "van-gogh-night-cafe",
    "kandinsky-composition-viii",
    "da-vinci-mona-lisa",
    "bruegel-harvesters",
    "renoir-moulin-de-la-galette",
    "cassatt-summertime",
    "bazille-ramparts-aigues-mortes",
)
THUMB = 128
#: the sample the 26 built-in style thumbnails were rendered from: scikit-image's chelsea
#: (451x300, CC0), this square crop, resized to 256 px, stylised, then resized to 128 px
SAMPLE_CROP = (70, 0, 370, 300)
SAMPLE_SIDE = 256


def preset_licence(rec: dict) -> str:
    """Short licence line for a painting: the artwork's status and the shipped image's terms."""
    if rec["upstream_licence"].lower().startswith("public domain"):
        return f"Public domain (GCompris); Debian's copyright lists the folder as {rec['licence']}"
    holder = f" ({rec['copyright']})" if rec["copyright"] else ""
    return f"Public-domain painting; the GCompris image{holder} is distributed as {rec['licence']}"


def preset_source(rec: dict) -> str:
    """``Debian gcompris-qt-data <version>: src/.../<common file prefix>*``."""
    names = [f for f in rec["files"] if not f.endswith(".svg")]
    first, last = min(names), max(names)
    n = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first))
    stem = first if len(names) == 1 else first[:n] + "*"
    version = rec["source"].split()[1]
    return f"Debian {PACKAGE} {version}: src/activities/{rec['activity']}/resource/{stem}"


def _square(im: Image.Image) -> Image.Image:
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    return im.crop((left, top, left + s, top + s))


def build_presets(paintings: Path, dest: Path, ids: tuple[str, ...] = PRESET_IDS) -> list[dict]:
    """Write ``dest/<id>.png`` (128 px centre crop of the painting), ``dest/<id>-preview.png``
    (chelsea stylised with it, as the built-in style thumbnails) and ``dest/presets.json``.

    Style vectors: :meth:`ArbitraryStyleModel.predict` of the whole reassembled painting (it
    takes the centre square at 256 px), float32 rounded to 6 decimals; previews use the rounded
    vector. Needs the style checkpoints and ``extract``'s output in ``paintings``.
    """
    import torch
    from skimage import data

    from studio.models.style import load_arbitrary

    torch.set_num_threads(1)
    model = load_arbitrary()

    def tensor(im: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)

    def image(t: torch.Tensor) -> Image.Image:
        return Image.fromarray(quantize(t.permute(1, 2, 0).numpy(), np.uint8))

    sample = Image.fromarray(data.chelsea()).crop(SAMPLE_CROP)
    sample = tensor(sample.resize((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.LANCZOS))
    manifest = {r["id"]: r for r in json.loads((paintings / "manifest.json").read_text())}
    dest.mkdir(parents=True, exist_ok=True)
    presets = []
    for pid in ids:
        rec = manifest[pid]
        im = Image.open(paintings / f"{pid}.png").convert("RGB")
        vec = [round(float(x), 6) for x in model.predict(tensor(im))]
        small = (THUMB, THUMB)
        _square(im).resize(small, Image.Resampling.LANCZOS).save(dest / f"{pid}.png", optimize=True)
        styled = image(model.transfer(sample, torch.tensor(vec, dtype=torch.float32)))
        styled.resize(small, Image.Resampling.LANCZOS).save(
            dest / f"{pid}-preview.png", optimize=True
        )
        presets.append(
            {
                "id": pid,
                "title": rec["title"],
                "artist": rec["artist"],
                "year": rec["year"],
                "licence": preset_licence(rec),
                "source": preset_source(rec),
                "style_vector": vec,
            }
        )
    text = json.dumps(presets, indent=1, ensure_ascii=False)
    # one line per style vector instead of one line per number
    text = re.sub(
        r"\[\s*(-?\d[-\d.e,\s]*?)\s*\]", lambda m: "[" + " ".join(m[1].split()) + "]", text
    )
    (dest / "presets.json").write_text(text + "\n")
    return presets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=data_cache_dir() / "paintings")
    ap.add_argument("--debs", type=Path, default=data_cache_dir() / "debs")
    ap.add_argument("--no-fetch", action="store_true", help="never run apt-get download")
    ap.add_argument(
        "--presets",
        type=Path,
        metavar="DIR",
        help="also render the style presets (thumbnails, previews, presets.json) into DIR, "
        "e.g. resources/paintings",
    )
    args = ap.parse_args(argv)
    root = ensure_deb(PACKAGE, args.debs, not args.no_fetch)
    if root is None:
        return 1
    records = extract(root, args.out)
    print(f"[paintings] {len(records)} images -> {args.out}")
    if args.presets is not None:
        presets = build_presets(args.out, args.presets)
        print(f"[paintings] {len(presets)} presets -> {args.presets}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
