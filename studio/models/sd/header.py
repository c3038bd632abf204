"""What a weight file says about itself without reading its weights: the tensors' names and
shapes and the safetensors text metadata. Listing a models folder reads only this."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import BadInputError, MissingModelError

#: a safetensors header larger than this is not one of a diffusion checkpoint (SDXL: ~300 KB)
MAX_HEADER_BYTES = 64 << 20


@dataclass(frozen=True)
class Header:
    """``shapes``: tensor name -> shape; ``metadata``: the ``__metadata__`` strings."""

    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str] = field(default_factory=dict)


def read_safetensors_header(path: Path) -> Header:
    """The header of a ``.safetensors`` file (a few hundred KB at most; no tensor is read).

    Raises :class:`MissingModelError` when the file is not there and :class:`BadInputError`
    when it is not a safetensors file."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise BadInputError(f"{path.name}: not a safetensors file (too short)")
            (size,) = struct.unpack("<Q", head)
            if size > MAX_HEADER_BYTES:
                raise BadInputError(f"{path.name}: not a safetensors file (bad header size)")
            raw = f.read(size)
    except FileNotFoundError:
        raise MissingModelError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BadInputError(f"{path}: a folder, not a .safetensors file") from None
    except OSError as exc:
        raise BadInputError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    try:
        if len(raw) != size:
            raise ValueError("truncated header")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("header is not an object")
        metadata = data.pop("__metadata__", None) or {}
        shapes = {str(k): tuple(int(n) for n in v["shape"]) for k, v in data.items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise BadInputError(f"{path.name}: not a safetensors file (unreadable header)") from None
    return Header(shapes, {str(k): str(v) for k, v in dict(metadata).items()})
