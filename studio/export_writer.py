"""Writing an export with its options: quality, lossless WebP, 8 or 16 bits, and labels.

:func:`studio.imageio.write_image` hands over here when it is given
:class:`~studio.export_metadata.ExportOptions`. Pillow writes 8-bit files with ICC, EXIF, DPI,
PNG text and XMP; 16-bit PNG comes from OpenCV with the chunks added afterwards, and 16-bit
TIFF from the small writer below (Pillow holds no 16-bit RGB, OpenCV writes no XMP or ICC).
Every file goes through :mod:`studio.atomic_write`. Qt-free.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import PngImagePlugin

from studio.atomic_write import atomic_open, write_bytes_atomic
from studio.errors import BadInputError
from studio.export_metadata import (
    PARAMETERS_KEY,
    XMP_PNG_KEY,
    ExportOptions,
    insert_png_chunks,
    png_text_chunks,
)
from studio.pixels import to_8bit

_PILLOW_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_PILLOW_FORMATS.update({".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"})
_TIFF_XMP = 700
_TIFF_ICC = 34675


def write_export(
    p: Path, pixels: np.ndarray, metadata: dict[str, Any], options: ExportOptions
) -> None:
    """Write ``pixels`` (RGB(A) uint8 or uint16) to ``p`` (already checked writable)."""
    from studio.imageio import pillow_image

    ext = p.suffix.lower()
    sixteen_ok = ext in (".png", ".tif", ".tiff")
    if options.bit_depth == 16 and sixteen_ok and pixels.dtype == np.uint8:
        pixels = pixels.astype(np.uint16) * 257
    if pixels.dtype == np.uint16 and (options.bit_depth == 8 or not sixteen_ok):
        pixels = to_8bit(pixels)
    if pixels.dtype == np.uint16:
        if ext == ".png":
            write_bytes_atomic(p, _png16(pixels, metadata, options))
        else:
            write_bytes_atomic(p, tiff16(pixels, metadata.get("icc_profile"), _xmp(options)))
        return
    im, kwargs = pillow_image(pixels, metadata, ext)
    xmp = _xmp(options)
    if ext in (".jpg", ".jpeg"):
        quality = int(options.quality)
        kwargs.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif ext == ".webp":
        kwargs.update(quality=100 if options.lossless else int(options.quality))
        # exact: keep the colour under transparent pixels, so lossless is pixel-identical
        kwargs.update(lossless=options.lossless, exact=options.lossless)
    elif ext in (".tif", ".tiff"):
        kwargs["compression"] = "tiff_deflate"
        if xmp:
            kwargs["tiffinfo"] = {_TIFF_XMP: xmp}
    elif ext == ".png":
        kwargs["pnginfo"] = _png_info(metadata, options)
    if xmp and ext in (".jpg", ".jpeg", ".webp"):
        kwargs["xmp"] = xmp
    with atomic_open(p) as f:
        im.save(f, format=_PILLOW_FORMATS[ext], **kwargs)


def _xmp(options: ExportOptions) -> bytes | None:
    return options.labels.xmp_packet() if options.labels is not None else None


def _png_info(metadata: dict[str, Any], options: ExportOptions) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    text = dict(metadata.get("text") or {})
    if options.labels is not None:
        text.pop(XMP_PNG_KEY, None)
        text[PARAMETERS_KEY] = options.labels.parameters_text()
    for key, value in text.items():
        value = str(value)
        if value.isascii():
            info.add_text(str(key), value)
        else:
            info.add_itxt(str(key), value)
    if options.labels is not None:
        info.add_itxt(XMP_PNG_KEY, options.labels.xmp_packet().decode("utf-8"))
    return info


def _png16(pixels: np.ndarray, metadata: dict[str, Any], options: ExportOptions) -> bytes:
    code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(pixels, code))
    if not ok:
        raise BadInputError("could not encode a 16-bit PNG")
    chunks: list[tuple[bytes, bytes]] = []
    if icc := metadata.get("icc_profile"):
        chunks.append((b"iCCP", b"icc\0\0" + zlib.compress(icc)))
    if exif := metadata.get("exif"):
        chunks.append((b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    if options.labels is not None:
        chunks.extend(png_text_chunks(options.labels))
    return insert_png_chunks(data.tobytes(), chunks)


def tiff16(pixels: np.ndarray, icc: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """A baseline little-endian TIFF of RGB(A) uint16 pixels, deflate-compressed in one strip,
    with optional ICC profile and XMP packet (EXIF would need a sub-IFD; it is left out)."""
    h, w, channels = pixels.shape
    strip = zlib.compress(np.ascontiguousarray(pixels, "<u2").tobytes(), 6)
    entries: list[tuple[int, int, list[int] | bytes]] = [  # (tag, type, values)
        (256, 4, [w]),
        (257, 4, [h]),
        (258, 3, [16] * channels),
        (259, 3, [8]),  # Adobe deflate
        (262, 3, [2]),  # RGB
        (273, 4, [0]),  # strip offset, patched below
        (277, 3, [channels]),
        (278, 4, [h]),
        (279, 4, [len(strip)]),
        (284, 3, [1]),  # chunky
    ]
    if channels == 4:
        entries.append((338, 3, [2]))  # unassociated (straight) alpha
    if xmp:
        entries.append((_TIFF_XMP, 1, xmp))
    if icc:
        entries.append((_TIFF_ICC, 7, icc))
    entries.sort(key=lambda e: e[0])
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = ifd_offset + ifd_size
    blobs = bytearray()
    fields = []
    for tag, kind, values in entries:
        raw = bytes(values) if kind in (1, 7) else _pack(kind, values)
        count = len(raw) if kind in (1, 7) else len(values)
        if len(raw) <= 4:
            fields.append((tag, kind, count, raw.ljust(4, b"\0")))
        else:
            if (data_offset + len(blobs)) % 2:
                blobs += b"\0"
            fields.append((tag, kind, count, struct.pack("<I", data_offset + len(blobs))))
            blobs += raw
    strip_offset = data_offset + len(blobs)
    ifd = bytearray(struct.pack("<H", len(fields)))
    for tag, kind, count, value in fields:
        if tag == 273:
            value = struct.pack("<I", strip_offset)
        ifd += struct.pack("<HHI", tag, kind, count) + value
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", ifd_offset) + bytes(ifd) + bytes(blobs) + strip


def _pack(kind: int, values: list[int] | bytes) -> bytes:
    return struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
