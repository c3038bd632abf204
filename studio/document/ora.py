"""Projects as OpenRaster (``.ora``): the layered format Krita, GIMP and MyPaint read and write.

An ``.ora`` is a zip: the uncompressed ``mimetype`` entry first, ``stack.xml`` (the layer tree,
top layer first), one PNG per layer placed at its ``x``/``y``, ``mergedimage.png`` and
``Thumbnails/thumbnail.png``. Studio's own data travels in entries other programs ignore:
``studio/project.json`` (active layer, each layer's provenance) and ``studio/mask.f32`` (the
float32 mask, raw little-endian, exactly as edited).

Reading checks every limit before anything is inflated (:data:`MAX_LAYERS`,
:data:`MAX_ENTRY_BYTES`, :data:`MAX_TOTAL_BYTES`, :data:`MAX_LAYER_MEMORY`, the document's
:data:`~studio.document.document.MAX_PIXELS`), reads each entry through a bounded reader, and
never writes a byte anywhere. Every problem is one :class:`~studio.errors.BadInputError`.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import warnings
import xml.etree.ElementTree as ET
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from studio.atomic_write import atomic_open, check_destination
from studio.document.document import MAX_PIXELS, Document
from studio.document.layer import Layer, composite
from studio.errors import BadInputError
from studio.geometry import Rect

MIMETYPE = b"image/openraster"
#: more layers (and groups) than this is not a painting but an attack or a broken file
MAX_LAYERS = 1000
#: ``stack.xml`` and ``studio/project.json`` larger than this are refused unread
MAX_XML_BYTES = 4 << 20
#: one entry may inflate to at most this (a 16384x16384 float32 mask is exactly 1 GiB)
MAX_ENTRY_BYTES = 1 << 30
#: all entries together may inflate to at most this
MAX_TOTAL_BYTES = 8 << 30
#: the decoded layers (document-sized RGBA) may take at most this much memory
MAX_LAYER_MEMORY = 8 << 30
#: deeper group nesting than this is refused (no real painting nests so deep)
MAX_DEPTH = 32
#: positions beyond this many pixels are nonsense (and would overflow arithmetic)
MAX_OFFSET = 1 << 20
THUMBNAIL_SIDE = 256

_STUDIO_JSON = "studio/project.json"
_STUDIO_MASK = "studio/mask.f32"
_NORMAL_OPS = ("svg:src-over", "")


@dataclass
class OpenedProject:
    """A document read from an ``.ora`` and the notes an artist should see (flattened groups,
    blend modes Studio shows as normal)."""

    document: Document
    notes: list[str] = field(default_factory=list)


# -- writing ------------------------------------------------------------------------------------


def save_project(doc: Document, path: str | os.PathLike[str], compress_level: int = 3) -> None:
    """Write ``doc`` as an OpenRaster project, atomically: a failure leaves the old file intact.

    Each layer is stored cropped to the box of its non-zero pixels with that box's position, so
    the file stays small and opening it gives back byte-identical layers.
    """
    p = check_destination(path)
    with atomic_open(p) as f, zipfile.ZipFile(f, "w") as zf:
        write_project(doc, zf, compress_level)


def write_project(doc: Document, zf: zipfile.ZipFile, compress_level: int = 3) -> None:
    """Write the entries of ``doc`` into an open zip (in the order OpenRaster requires)."""
    zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
    root = ET.Element("image", {"version": "0.0.5", "w": str(doc.width), "h": str(doc.height)})
    stack = ET.SubElement(root, "stack")
    entries: list[tuple[str, np.ndarray]] = []
    extra: list[dict[str, Any]] = []
    for index, layer in enumerate(doc.layers):
        box = _content_box(layer.pixels)
        src = f"data/layer{index:03d}.png"
        entries.append((src, layer.pixels[box.slices]))
        attrs = {
            "name": layer.name,
            "src": src,
            "x": str(box.x),
            "y": str(box.y),
            "opacity": repr(float(layer.opacity)),
            "visibility": "visible" if layer.visible else "hidden",
            "composite-op": "svg:src-over",
        }
        # OpenRaster lists the top layer first
        stack.insert(0, ET.Element("layer", attrs))
        extra.append({"src": src, "provenance": layer.provenance})
    xml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    zf.writestr("stack.xml", xml, compress_type=zipfile.ZIP_DEFLATED)
    for src, pixels in entries:
        zf.writestr(src, _png_bytes(pixels, compress_level), compress_type=zipfile.ZIP_STORED)
    merged = composite(doc.layers, doc.bounds)
    zf.writestr("mergedimage.png", _png_bytes(merged, compress_level), zipfile.ZIP_STORED)
    zf.writestr("Thumbnails/thumbnail.png", thumbnail_png(merged), zipfile.ZIP_STORED)
    meta = doc.info.metadata
    project = {
        "studio_project": 1,
        "active_layer": doc.active_index,
        "layers": extra,
        "icc_profile": meta["icc_profile"].hex() if meta.get("icc_profile") else None,
        "exif": meta["exif"].hex() if meta.get("exif") else None,
    }
    zf.writestr(_STUDIO_JSON, json.dumps(project, indent=1), zipfile.ZIP_DEFLATED)
    mask = np.ascontiguousarray(doc.mask, dtype="<f4").tobytes()
    zf.writestr(_STUDIO_MASK, mask, zipfile.ZIP_DEFLATED, compresslevel=1)


def thumbnail_png(rgba: np.ndarray, side: int = THUMBNAIL_SIDE) -> bytes:
    """A PNG at most ``side`` pixels on its longer edge (OpenRaster's thumbnail rule)."""
    im = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    im.thumbnail((side, side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def _png_bytes(rgba: np.ndarray, compress_level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(
        buf, "PNG", compress_level=compress_level
    )
    return buf.getvalue()


def _content_box(pixels: np.ndarray) -> Rect:
    """Box of the pixels with any non-zero byte (colour under zero alpha counts: it is kept);
    an empty layer is stored as one transparent pixel at the origin."""
    h, w = pixels.shape[:2]
    words = pixels.view(np.uint32).reshape(h, w)
    rows = np.flatnonzero(words.max(axis=1))
    if rows.size == 0:
        return Rect(0, 0, 1, 1)
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(words[top:bottom].max(axis=0))
    return Rect.from_edges(int(cols[0]), top, int(cols[-1]) + 1, bottom)


# -- reading ------------------------------------------------------------------------------------


def is_project_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ".ora"


def open_project(
    path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS, *, layer_pixels: bool = True
) -> OpenedProject:
    """Read an ``.ora`` (ours or another program's) into a new, clean :class:`Document`.

    ``layer_pixels=False`` reads only the structure (no layer is decoded), e.g. to show a size.
    Raises :class:`BadInputError` with one sentence naming the file for anything it cannot use.
    """
    p = Path(path)
    _check_file(p)
    try:
        with zipfile.ZipFile(p) as zf:
            return _Reader(p, zf, max_pixels).read(layer_pixels)
    except BadInputError:
        raise
    except zipfile.BadZipFile as exc:
        with open(p, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":
            raise BadInputError(f"{p}: the project is damaged or truncated ({exc})") from None
        raise BadInputError(f"{p}: not an OpenRaster project (not a zip archive)") from None
    except RuntimeError as exc:  # an encrypted entry
        raise BadInputError(f"{p}: the project cannot be read ({exc})") from None
    except NotImplementedError as exc:  # a compression method zipfile lacks
        raise BadInputError(f"{p}: the project uses an unsupported compression ({exc})") from None
    except MemoryError:
        raise BadInputError(f"{p}: not enough memory to open this project") from None
    except (OSError, EOFError, zlib.error, struct.error, ValueError, OverflowError) as exc:
        raise BadInputError(f"{p}: the project is damaged or truncated ({exc})") from None


def _check_file(p: Path) -> None:
    if not p.exists():
        raise BadInputError(f"{p}: no such file")
    if p.is_dir():
        raise BadInputError(f"{p}: is a folder, not a project")
    if p.stat().st_size == 0:
        raise BadInputError(f"{p}: the file is empty (0 bytes)")


@dataclass
class _Placed:
    """One layer of the flattened tree: where its PNG is and how it shows."""

    name: str
    src: str
    x: int
    y: int
    opacity: float
    visible: bool


class _Reader:
    def __init__(self, path: Path, zf: zipfile.ZipFile, max_pixels: int) -> None:
        self.path = path
        self.zf = zf
        self.max_pixels = max_pixels
        self.notes: list[str] = []
        self.infos = {info.filename: info for info in zf.infolist()}

    def fail(self, why: str) -> BadInputError:
        return BadInputError(f"{self.path}: {why}")

    def read(self, layer_pixels: bool) -> OpenedProject:
        self._check_entries()
        root = self._stack_xml()
        width, height = self._image_size(root)
        stack = root.find("stack")
        if stack is None:
            raise self.fail("stack.xml has no layer stack")
        placed: list[_Placed] = []
        self._walk(stack, 0, 0, 1.0, True, placed, depth=0)
        placed.reverse()  # OpenRaster lists the top layer first; Studio keeps bottom first
        if not placed:
            raise self.fail("the project has no layers")
        if len(placed) * width * height * 4 > MAX_LAYER_MEMORY:
            raise self.fail(
                f"{len(placed)} layers of {width}x{height} would take "
                f"{len(placed) * width * height * 4 / 2**30:.1f} GiB; Studio opens projects up to "
                f"{MAX_LAYER_MEMORY / 2**30:.0f} GiB of layers"
            )
        extra = self._studio_json()
        doc = Document(width, height)
        provenance = {
            str(item.get("src")): item.get("provenance")
            for item in extra.get("layers", [])
            if isinstance(item, dict)
        }
        for item in placed:
            pixels = (
                self._layer_pixels(item, width, height)
                if layer_pixels
                else np.zeros((1, 1, 4), np.uint8)
            )
            prov = provenance.get(item.src)
            layer = Layer(pixels, item.name, item.visible, item.opacity)
            layer.provenance = prov if isinstance(prov, dict) else None
            doc.layers.append(layer)
        if layer_pixels:
            doc.mask = self._mask(width, height)
        active = extra.get("active_layer", len(doc.layers) - 1)
        doc.active_index = active if isinstance(active, int) else len(doc.layers) - 1
        doc.active_index = max(0, min(doc.active_index, len(doc.layers) - 1))
        doc.info.path = str(self.path)
        doc.info.metadata = {"format": "ORA", **self._original_metadata(extra)}
        if layer_pixels:
            flat = doc.composite()
            flat.flags.writeable = False
            doc.original = flat
        doc.mark_clean()
        return OpenedProject(doc, self.notes)

    # -- the archive ---------------------------------------------------------------------------
    def _check_entries(self) -> None:
        infos = self.zf.infolist()
        if not infos or infos[0].filename != "mimetype":
            if "stack.xml" not in self.infos:
                raise self.fail("not an OpenRaster project (no mimetype or stack.xml entry)")
        elif self._read("mimetype", 64).strip() != MIMETYPE:
            raise self.fail("not an OpenRaster project (its mimetype is not image/openraster)")
        if len(infos) > 4 * MAX_LAYERS + 16:
            raise self.fail(f"the archive has {len(infos)} entries; a project has far fewer")
        total = 0
        for info in infos:
            if info.file_size > MAX_ENTRY_BYTES:
                raise self.fail(
                    f"entry {info.filename!r} would inflate to {info.file_size / 2**20:.0f} MiB, "
                    f"over the limit of {MAX_ENTRY_BYTES / 2**20:.0f} MiB (a zip bomb?)"
                )
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise self.fail(
                f"the archive would inflate to {total / 2**30:.1f} GiB, over the limit of "
                f"{MAX_TOTAL_BYTES / 2**30:.0f} GiB (a zip bomb?)"
            )

    def _read(self, name: str, limit: int) -> bytes:
        """An entry's bytes, never more than ``limit`` nor than its declared size."""
        info = self.infos.get(name)
        if info is None:
            raise self.fail(f"the archive has no entry {name!r}")
        if info.file_size > limit:
            raise self.fail(
                f"entry {name!r} would inflate to {info.file_size / 2**20:.1f} MiB, over the "
                f"limit of {limit / 2**20:.1f} MiB"
            )
        with self.zf.open(info) as f:
            data = f.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise self.fail(f"entry {name!r} is not the size its header says (a zip bomb?)")
        return data

    # -- stack.xml -----------------------------------------------------------------------------
    def _stack_xml(self) -> ET.Element:
        if "stack.xml" not in self.infos:
            raise self.fail("not an OpenRaster project (stack.xml is missing)")
        data = self._read("stack.xml", MAX_XML_BYTES)
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise self.fail("stack.xml declares a DTD or entities, which a project never needs")
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise self.fail(f"stack.xml is malformed ({exc})") from None
        if root.tag != "image":
            raise self.fail(f"stack.xml starts with <{root.tag}>, not <image>")
        count = sum(1 for el in root.iter() if el.tag in ("layer", "stack"))
        if count > MAX_LAYERS:
            raise self.fail(
                f"the project has {count} layers and groups; Studio opens at most {MAX_LAYERS}"
            )
        return root

    def _image_size(self, root: ET.Element) -> tuple[int, int]:
        width = self._int(root, "w", None)
        height = self._int(root, "h", None)
        if width <= 0 or height <= 0:
            raise self.fail(f"stack.xml gives the image size {width}x{height}")
        self._check_pixels("the image", width, height)
        return width, height

    def _check_pixels(self, what: str, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            side = int(self.max_pixels**0.5)
            raise self.fail(
                f"{what} is {width}x{height}, {width * height / 1e6:.0f} megapixels; Studio opens "
                f"images up to {self.max_pixels / 1e6:.0f} megapixels ({side}x{side})"
            )

    def _int(self, el: ET.Element, key: str, default: int | None) -> int:
        raw = el.get(key)
        if raw is None:
            if default is None:
                raise self.fail(f"stack.xml: <{el.tag}> has no {key!r} attribute")
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            try:
                value = round(float(raw))  # some writers store positions as "12.0"
            except (ValueError, OverflowError):
                raise self.fail(f"stack.xml: {key}={raw!r} is not a number") from None
        if abs(value) > MAX_OFFSET:
            raise self.fail(f"stack.xml: {key}={value} is out of range")
        return value

    def _walk(
        self,
        stack: ET.Element,
        x0: int,
        y0: int,
        opacity: float,
        visible: bool,
        out: list[_Placed],
        depth: int,
    ) -> None:
        """Flatten a (possibly nested) stack: offsets add, opacities multiply, hidden hides."""
        if depth > MAX_DEPTH:
            raise self.fail(f"layer groups are nested more than {MAX_DEPTH} deep")
        for el in stack:
            name = el.get("name") or ("Group" if el.tag == "stack" else "Layer")
            x = x0 + self._int(el, "x", 0)
            y = y0 + self._int(el, "y", 0)
            alpha = opacity * self._opacity(el, name)
            shown = visible and el.get("visibility", "visible") != "hidden"
            op = el.get("composite-op", "svg:src-over")
            if op not in _NORMAL_OPS:
                self.notes.append(
                    f"{name!r} uses the blend mode {op!r}, which Studio lacks; it shows as normal"
                )
            if el.tag == "stack":
                before = len(out)
                self._walk(el, x, y, alpha, shown, out, depth + 1)
                self.notes.append(
                    f"group {name!r} was flattened: its {len(out) - before} layers are now "
                    "separate layers"
                )
            elif el.tag == "layer":
                src = el.get("src")
                if not src:
                    raise self.fail(f"stack.xml: layer {name!r} names no PNG (src)")
                out.append(_Placed(name, self._safe_src(src), x, y, alpha, shown))

    def _opacity(self, el: ET.Element, name: str) -> float:
        raw = el.get("opacity", "1")
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(f"stack.xml: layer {name!r} has the opacity {raw!r}") from None
        if not math.isfinite(value):
            raise self.fail(f"stack.xml: layer {name!r} has the opacity {raw!r}")
        return min(1.0, max(0.0, value))

    def _safe_src(self, src: str) -> str:
        pure = PurePosixPath(src)
        if (
            "\\" in src
            or "\x00" in src
            or pure.is_absolute()
            or ".." in pure.parts
            or (len(src) > 1 and src[1] == ":")
        ):
            raise self.fail(f"stack.xml: the layer path {src!r} points outside the archive")
        if src not in self.infos:
            raise self.fail(f"stack.xml names {src!r}, which is not in the archive")
        return src

    # -- layers --------------------------------------------------------------------------------
    def _layer_pixels(self, item: _Placed, width: int, height: int) -> np.ndarray:
        data = self._read(item.src, MAX_ENTRY_BYTES)
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
            raise self.fail(f"layer {item.name!r} is not a readable PNG")
        png_w, png_h = struct.unpack(">II", data[16:24])
        self._check_pixels(f"layer {item.name!r}", png_w, png_h)  # before decoding a pixel
        canvas = np.zeros((height, width, 4), np.uint8)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                Image.MAX_IMAGE_PIXELS = None  # checked above, with a clearer message
                with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
                    self._check_pixels(f"layer {item.name!r}", im.width, im.height)
                    pixels = np.asarray(im.convert("RGBA"))
        except BadInputError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
            raise self.fail(f"layer {item.name!r} is not a readable PNG ({exc})") from None
        box = Rect(item.x, item.y, pixels.shape[1], pixels.shape[0])
        clipped = box.intersect(Rect(0, 0, width, height))
        if not clipped.is_empty():
            canvas[clipped.slices] = pixels[clipped.translate(-item.x, -item.y).slices]
        return canvas

    def _mask(self, width: int, height: int) -> np.ndarray:
        if _STUDIO_MASK not in self.infos:
            return np.zeros((height, width), np.float32)
        if self.infos[_STUDIO_MASK].file_size != width * height * 4:
            raise self.fail("the Studio mask entry does not match the image size")
        raw = np.frombuffer(self._read(_STUDIO_MASK, width * height * 4), "<f4")
        mask = raw.reshape(height, width).astype(np.float32)
        if not np.isfinite(mask).all():
            raise self.fail("the Studio mask holds values that are not numbers")
        return np.clip(mask, 0.0, 1.0)

    def _studio_json(self) -> dict[str, Any]:
        if _STUDIO_JSON not in self.infos:
            return {}
        try:
            data = json.loads(self._read(_STUDIO_JSON, MAX_XML_BYTES))
        except (ValueError, RecursionError):
            raise self.fail("the Studio data in the project is damaged") from None
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _original_metadata(extra: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("icc_profile", "exif"):
            value = extra.get(key)
            if isinstance(value, str):
                try:
                    out[key] = bytes.fromhex(value)
                except ValueError:
                    continue
        return out
