"""Reading and writing image files with clear errors and the metadata kept.

Pixels come back as RGB or RGBA numpy arrays, HxWxC, uint8 or (for 16-bit PNG/TIFF) uint16.
Colour profile, EXIF (orientation applied and reset), DPI and PNG text survive a round trip.
OpenCV is used only for 16-bit colour files, which Pillow cannot hold; its BGR order never leaks.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from studio.atomic_write import atomic_open, check_destination, write_bytes_atomic
from studio.errors import BadInputError
from studio.pixels import max_value, quantize, to_8bit, to_unit

if TYPE_CHECKING:
    from studio.export_metadata import ExportOptions

#: Largest image Studio opens: 16384 x 16384. A layer that size is 1 GiB of RGBA pixels.
MAX_PIXELS = 16384 * 16384
READ_FORMATS = "PNG, JPEG, WebP, TIFF, BMP"
WRITE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


@dataclass
class LoadedImage:
    """Pixels plus what must survive export."""

    pixels: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding a pixel (Pillow reads headers only)."""

    width: int
    height: int
    #: channels of the pixels :func:`read_image` returns: 3 (RGB) or 4 (RGBA)
    channels: int
    #: bytes per channel of those pixels: 1 (uint8) or 2 (uint16)
    itemsize: int
    #: frames in the file (an animated GIF, APNG or WebP); Studio edits the first
    frames: int = 1
    format: str | None = None

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the pixel array :func:`read_image` returns."""
        return self.width * self.height * self.channels * self.itemsize


def read_header(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> ImageHeader:
    """Size, channels, depth and frame count from the header; the same errors as
    :func:`read_image`, so a command can refuse an image before decoding it."""
    p = Path(path)
    with _opened(p, max_pixels) as im:
        return _header_of(im)


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read an image file; raises :class:`BadInputError` with one readable sentence on failure.

    Only the first frame of an animated file is read; ``metadata["frames"]`` then says how many
    there are (see :func:`frames_note`).
    """
    p = Path(path)
    with _opened(p, max_pixels) as im:
        is_16bit = _is_16bit_color(im)  # before anything loads pixels and closes fp
        metadata = _metadata_of(im)
        frames = _frame_count(im)
        if frames > 1:
            metadata["frames"] = frames
        if is_16bit:
            pixels = _read_16bit(p)
        else:
            im = ImageOps.exif_transpose(im)
            pixels = _to_array(im)
    return LoadedImage(np.ascontiguousarray(pixels), metadata, str(p))


def frames_note(path: str | os.PathLike[str], metadata: dict[str, Any]) -> str | None:
    """A sentence for an animated file whose other frames Studio leaves out, else None."""
    frames = int(metadata.get("frames", 1))
    if frames <= 1:
        return None
    return f"{Path(path).name} has {frames} frames; Studio edits the first"


@contextlib.contextmanager
def _opened(p: Path, max_pixels: int) -> Iterator[Image.Image]:
    """The file opened by Pillow (header read, size checked); any failure while it is open,
    decoding included, becomes one :class:`BadInputError` sentence."""
    if not p.exists():
        raise BadInputError(f"{p}: no such file")
    if p.is_dir():
        raise BadInputError(f"{p}: is a folder, not an image")
    if p.stat().st_size == 0:
        raise BadInputError(f"{p}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None  # we check the size ourselves, with a clearer message
            with Image.open(p) as im:
                _check_size(p, im.width, im.height, max_pixels)
                yield im
    except BadInputError:
        raise
    except UnidentifiedImageError:
        if _has_image_signature(p):
            raise BadInputError(f"{p}: the image is damaged or truncated") from None
        raise BadInputError(f"{p}: not an image Studio can read ({READ_FORMATS})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        # Pillow's decoders report damaged files with any of these
        raise BadInputError(f"{p}: the image is damaged or truncated ({exc})") from None
    except MemoryError:
        raise BadInputError(f"{p}: not enough memory to open this image") from None


def _frame_count(im: Image.Image) -> int:
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    # a damaged later frame: the first still reads
    except (OSError, ValueError, EOFError, IndexError, TypeError, struct.error):
        return 1


_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _header_of(im: Image.Image) -> ImageHeader:
    width, height = im.width, im.height
    # Pillow's PNG getexif() decodes the whole image (an eXIf chunk may follow the pixels)
    header_exif = im.format != "PNG" or "exif" in im.info
    if header_exif and im.getexif().get(0x0112) in _TRANSPOSED:
        width, height = height, width
    is_16bit = _is_16bit_color(im)
    grey16 = im.mode in ("I;16", "I;16B", "I;16L", "I")
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    itemsize = 2 if is_16bit or grey16 else 1
    return ImageHeader(width, height, 4 if has_alpha else 3, itemsize, _frame_count(im), im.format)


_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*", b"BM")


def _has_image_signature(p: Path) -> bool:
    with open(p, "rb") as f:
        head = f.read(16)
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _check_size(p: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        side = int(max_pixels**0.5)
        raise BadInputError(
            f"{p}: {width}x{height} is {width * height / 1e6:.0f} megapixels; Studio opens images "
            f"up to {max_pixels / 1e6:.0f} megapixels ({side}x{side})"
        )


def _metadata_of(im: Image.Image) -> dict[str, Any]:
    meta: dict[str, Any] = {"format": im.format}
    if icc := im.info.get("icc_profile"):
        meta["icc_profile"] = icc
    if "dpi" in im.info:
        meta["dpi"] = tuple(float(v) for v in im.info["dpi"])
    exif = im.getexif()
    if exif:
        # Orientation is applied to the pixels on load, so the saved copy says "upright". The
        # image's own Exif object is restored: exif_transpose still needs the real value.
        orientation = exif.get(0x0112)
        exif[0x0112] = 1
        meta["exif"] = exif.tobytes()
        if orientation is None:
            del exif[0x0112]
        else:
            exif[0x0112] = orientation
    text = getattr(im, "text", None)
    if text:
        meta["text"] = dict(text)
    return meta


def _is_16bit_color(im: Image.Image) -> bool:
    # Pillow opens 16-bit RGB(A) PNG/TIFF as 8-bit; the file header tells the truth.
    if im.format == "PNG" and im.fp is not None:
        pos = im.fp.tell()
        try:
            im.fp.seek(24)  # signature (8) + IHDR length and type (8) + width, height (8)
            depth, colour_type = im.fp.read(2)
        finally:
            im.fp.seek(pos)
        return depth == 16 and colour_type in (2, 4, 6)
    if im.format == "TIFF":
        bits = im.tag_v2.get(258)
        return bool(bits) and len(bits) >= 3 and max(bits) == 16
    return False


def _read_16bit(p: Path) -> np.ndarray:
    data = np.fromfile(p, np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise BadInputError(f"{p}: the 16-bit image could not be decoded")
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    code = cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(arr, code)


def _to_array(im: Image.Image) -> np.ndarray:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.uint32)
        arr = np.clip(arr, 0, 65535).astype(np.uint16)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if im.mode == "F":
        arr = quantize(np.asarray(im, np.float32), np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGBA" if has_alpha else "RGB"))


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    metadata: dict[str, Any] | None = None,
    options: ExportOptions | None = None,
) -> None:
    """Write RGB(A) uint8/uint16 pixels, keeping ICC profile, EXIF, DPI and PNG text.

    JPEG and BMP hold no alpha: transparent pixels are flattened onto white. 16-bit data is kept
    in PNG and TIFF and reduced to 8 bits elsewhere. ``options`` (quality, lossless WebP, bit
    depth, labels saying what made the image) hands over to :mod:`studio.export_writer`.
    """
    p = check_writable(path)
    ext = p.suffix.lower()
    metadata = metadata or {}
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"expected HxWx3 or HxWx4 pixels, got {pixels.shape}")
    if options is not None:
        from studio.export_writer import write_export

        write_export(p, pixels, metadata, options)
        return
    if pixels.dtype == np.uint16 and ext in (".png", ".tif", ".tiff"):
        _write_16bit(p, pixels)
        return
    im, kwargs = pillow_image(to_8bit(pixels), metadata, ext)
    if ext in (".jpg", ".jpeg"):
        kwargs.update(quality=95, subsampling=0)
    elif ext == ".webp":
        kwargs.update(quality=95)
    elif ext == ".png" and metadata.get("text"):
        info = PngImagePlugin.PngInfo()
        for key, value in metadata["text"].items():
            info.add_text(str(key), str(value))
        kwargs["pnginfo"] = info
    with atomic_open(p) as f:  # encode straight into the temporary file: no second copy
        im.save(f, format=_FORMATS[ext], **kwargs)


def pillow_image(
    pixels: np.ndarray, metadata: dict[str, Any], ext: str
) -> tuple[Image.Image, dict[str, Any]]:
    """8-bit RGB(A) pixels as a Pillow image (alpha flattened on white for JPEG and BMP) and the
    save arguments that carry the ICC profile, DPI and EXIF of ``metadata``."""
    if pixels.shape[2] == 4 and ext in (".jpg", ".jpeg", ".bmp"):
        pixels = flatten_on_white(pixels)
    im = Image.fromarray(np.ascontiguousarray(pixels), "RGBA" if pixels.shape[2] == 4 else "RGB")
    kwargs: dict[str, Any] = {}
    if icc := metadata.get("icc_profile"):
        kwargs["icc_profile"] = icc
    if "dpi" in metadata:
        kwargs["dpi"] = metadata["dpi"]
    if (exif := metadata.get("exif")) and ext != ".bmp":
        kwargs["exif"] = exif
    return im, kwargs


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail early (before any work) when ``path`` cannot be written as an image."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
        raise BadInputError(
            f"{p}: cannot write '{ext or 'extension-less'}' files (use one of "
            f"{', '.join(sorted(WRITE_EXTENSIONS))})"
        )
    return check_destination(p)


_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


def _write_16bit(p: Path, pixels: np.ndarray) -> None:
    code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(p.suffix.lower(), cv2.cvtColor(pixels, code))
    if not ok:
        raise BadInputError(f"{p}: could not encode a 16-bit image")
    _atomic_write(p, data.tobytes())


def _atomic_write(p: Path, data: bytes) -> None:
    """Replace ``p`` with ``data``; see :mod:`studio.atomic_write` for the guarantees."""
    write_bytes_atomic(p, data)


def read_mask(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as float32 HxW in [0, 1], 1 = edit.

    White (or, for a PNG with transparency, opaque) means "edit". ``size`` = (width, height)
    makes a mismatch a clear error instead of a silent resize.
    """
    loaded = read_image(path)
    px = loaded.pixels
    if px.shape[2] == 4 and px[:, :, 3].min() < max_value(px.dtype):
        mask = to_unit(px[:, :, 3])
    else:
        rgb = to_unit(px[:, :, :3])
        mask = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        raise BadInputError(
            f"{path}: the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{size[0]}x{size[1]}; they must be the same size"
        )
    return np.clip(mask, 0.0, 1.0)


def flatten_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite straight-alpha RGBA uint8 onto white; returns RGB uint8."""
    a = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
