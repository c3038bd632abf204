"""Export that says what made the image: the A1111 ``parameters`` text and an XMP packet.

An image a model changed carries its edit history (model, parameters, seed, prompt):

* PNG: the text chunk ``parameters`` in the convention other generation tools read
  (``prompt``, ``Negative prompt: ...``, ``Steps: ..., Sampler: ..., Seed: ..., Model: ...``)
  and the XMP packet as the iTXt chunk ``XML:com.adobe.xmp``;
* JPEG, WebP, TIFF: the XMP packet.

The XMP names the IPTC digital source type: ``trainedAlgorithmicMedia`` for a picture a model
made from nothing, ``compositeWithTrainedAlgorithmicMedia`` for one a model edited. The original
EXIF and ICC profile are kept as :func:`studio.imageio.write_image` keeps them. Qt-free.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from studio import __version__
from studio.task_kind import TaskKind

IPTC_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
GENERATED = IPTC_SOURCE + "trainedAlgorithmicMedia"
EDITED = IPTC_SOURCE + "compositeWithTrainedAlgorithmicMedia"
PARAMETERS_KEY = "parameters"
XMP_PNG_KEY = "XML:com.adobe.xmp"

#: provenance keys with a name of their own in the A1111 line, in its order
_A1111_NAMES = (
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("cfg_scale", "CFG scale"),
    ("seed", "Seed"),
    ("size", "Size"),
    ("model", "Model"),
)
_TEXT_KEYS = ("prompt", "negative_prompt")


@dataclass(frozen=True)
class ExportLabels:
    """What made an image: provenance steps oldest first, and whether a model made all of it."""

    steps: tuple[Mapping[str, Any], ...]
    generated: bool = False

    @property
    def source_type(self) -> str:
        return GENERATED if self.generated else EDITED

    def parameters_text(self) -> str:
        """The A1111 ``parameters`` text of the latest step (the one other tools show)."""
        return a1111_parameters(self.steps[-1])

    def xmp_packet(self) -> bytes:
        return xmp_packet(self)


@dataclass(frozen=True)
class ExportOptions:
    """How an export is written: labels (None = none), JPEG/WebP ``quality``, WebP
    ``lossless``, and ``bit_depth`` 16 to widen 8-bit pixels in PNG or TIFF."""

    labels: ExportLabels | None = None
    quality: int = 95
    lossless: bool = False
    bit_depth: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def provenance_of(params: Any, **extra: Any) -> dict[str, Any]:
    """A JSON-safe provenance dict from a task's params dataclass (arrays left out).

    ``task`` comes from the params' ``task`` attribute; the model is ``model``, ``method`` or
    ``style`` (whichever the task has); everything else plain goes under ``params``.
    """
    out: dict[str, Any] = {"task": str(getattr(params, "task", type(params).__name__))}
    plain: dict[str, Any] = {}
    for name, value in _fields(params).items():
        value = _plain(value) if name in _TEXT_KEYS else _file_names(_plain(value))
        if value is not None:
            plain[name] = value
    for key in ("model", "method", "style"):
        if isinstance(plain.get(key), str):
            out["model"] = plain[key]
            break
    for key in ("seed", "prompt", "negative_prompt", "steps", "sampler"):
        if key in plain:
            out[key] = plain.pop(key)
    out["params"] = plain
    out.update({k: v for k, v in extra.items() if _plain(v) is not None})
    return out


def _fields(params: Any) -> dict[str, Any]:
    """A params dataclass's fields; a nested params value (an outpaint's prompted fill) adds
    its own; fields its ``unlabelled_fields()`` names (options that did not shape this run)
    are left out."""
    if not dataclasses.is_dataclass(params):
        return {}
    skip = set(params.unlabelled_fields()) if hasattr(params, "unlabelled_fields") else set()
    found: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if f.name in skip:
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found |= _fields(value)
        else:
            found[f.name] = value
    return found


def _file_names(value: Any) -> Any:
    """File paths in a label as their names only: a folder of one machine (a user name, a
    models folder) must not travel inside images that are shared."""
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or value
    if isinstance(value, list):
        return [_file_names(v) for v in value]
    return value


def record_provenance(
    layers: Iterable[Any], before_ids: set[int], active: Any, params: Any
) -> None:
    """After a result landed: the layers it added (or, merged, the active layer) carry its
    provenance, so projects keep it and exports say what made the picture."""
    step = provenance_of(params)
    added = [layer for layer in layers if layer.id not in before_ids]
    for layer in added or [active]:
        layer.provenance = dict(step)


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, tuple | list):
        items = [_plain(v) for v in value]
        return None if any(v is None for v in items) else items
    return None  # arrays, images and other objects do not belong in a label


def labels_from_layers(provenances: Iterable[Mapping[str, Any] | None]) -> ExportLabels | None:
    """Labels for a picture whose layers carry these provenances (bottom first); None when no
    model touched it. A picture is 'generated' when its only provenance is a generate step."""
    steps = tuple(p for p in provenances if p)
    if not steps:
        return None
    generated = all(p.get("task") == TaskKind.GENERATE for p in steps) and bool(
        steps[0].get("whole_image")
    )
    return ExportLabels(steps, generated)


def a1111_parameters(step: Mapping[str, Any]) -> str:
    """``prompt\\nNegative prompt: ...\\nSteps: 20, Sampler: ..., Seed: 7, Model: ...``."""
    lines = []
    if step.get("prompt"):
        lines.append(str(step["prompt"]))
    if step.get("negative_prompt"):
        lines.append(f"Negative prompt: {step['negative_prompt']}")
    pairs = [f"{label}: {_a1111_value(step[key])}" for key, label in _A1111_NAMES if key in step]
    pairs.append(f"Studio task: {step.get('task', 'edit')}")
    params = step.get("params") or {}
    for key, value in params.items():
        pairs.append(f"{key.replace('_', ' ').capitalize()}: {_a1111_value(value)}")
    pairs.append(f"Version: Studio {__version__}")
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def _a1111_value(value: Any) -> str:
    text = "x".join(map(str, value)) if isinstance(value, list) else str(value)
    # commas and colons separate pairs in the A1111 line: quote a value that holds them
    return f'"{text}"' if any(c in text for c in ',:"\n') else text


def xmp_packet(labels: ExportLabels) -> bytes:
    """An XMP packet (UTF-8) with the digital source type, the tool and the edit history."""
    events = "".join(
        "<rdf:li rdf:parseType='Resource'>"
        f"<stEvt:action>{'created' if step.get('task') == TaskKind.GENERATE else 'edited'}"
        "</stEvt:action>"
        f"<stEvt:softwareAgent>{escape(_agent(step))}</stEvt:softwareAgent>"
        f"<stEvt:parameters>{escape(a1111_parameters(step))}</stEvt:parameters>"
        "</rdf:li>"
        for step in labels.steps
    )
    description = escape(labels.parameters_text())
    body = (
        "<?xpacket begin='\ufeff' id='W5M0MpCehiHzreSzNTczkc9d'?>"
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'>"
        "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        "<rdf:Description rdf:about=''"
        " xmlns:Iptc4xmpExt='http://iptc.org/std/Iptc4xmpExt/2008-02-29/'"
        " xmlns:xmp='http://ns.adobe.com/xap/1.0/'"
        " xmlns:dc='http://purl.org/dc/elements/1.1/'"
        " xmlns:xmpMM='http://ns.adobe.com/xap/1.0/mm/'"
        " xmlns:stEvt='http://ns.adobe.com/xap/1.0/sType/ResourceEvent#'"
        f" Iptc4xmpExt:DigitalSourceType={quoteattr(labels.source_type)}"
        f" xmp:CreatorTool={quoteattr(f'Studio {__version__}')}>"
        f"<dc:description><rdf:Alt><rdf:li xml:lang='x-default'>{description}</rdf:li>"
        "</rdf:Alt></dc:description>"
        f"<xmpMM:History><rdf:Seq>{events}</rdf:Seq></xmpMM:History>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        "<?xpacket end='w'?>"
    )
    return body.encode("utf-8")


def _agent(step: Mapping[str, Any]) -> str:
    model = step.get("model")
    return f"Studio {__version__} ({model})" if model else f"Studio {__version__}"


# -- PNG chunks (for encoders that write none, such as OpenCV's 16-bit PNG) --------------------


def png_text_chunks(labels: ExportLabels) -> list[tuple[bytes, bytes]]:
    """(type, data) of the tEXt/iTXt chunks a labelled PNG carries."""
    text = labels.parameters_text()
    try:
        parameters = (b"tEXt", PARAMETERS_KEY.encode() + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:  # tEXt is Latin-1 only; iTXt carries any prompt
        parameters = (b"iTXt", _itxt(PARAMETERS_KEY, text.encode("utf-8")))
    return [parameters, (b"iTXt", _itxt(XMP_PNG_KEY, labels.xmp_packet()))]


def _itxt(key: str, utf8: bytes) -> bytes:
    # keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated NUL
    return key.encode("latin-1") + b"\0\0\0\0\0" + utf8


def insert_png_chunks(png: bytes, chunks: Iterable[tuple[bytes, bytes]]) -> bytes:
    """``png`` with ``chunks`` inserted right after IHDR (before the pixel data)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    extra = b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )
    return png[:ihdr_end] + extra + png[ihdr_end:]
