"""Planning a batch: which files (or prompts) become which outputs, decided once in the parent.

Inputs are the image files directly inside IN_DIR (``recursive``: also in its sub-folders),
sorted by their path relative to IN_DIR, so a plan is the same on every run and every machine.
Hidden files and folders (a leading dot, e.g. the manifest, a killed writer's temporary file)
and OUT_DIR itself when it lies inside IN_DIR are left out. An output keeps the input's
relative folder and stem with the batch's extension (``.png`` by default); two inputs that
would give the same output (``a.jpg`` and ``a.png``) keep their whole name instead
(``a.jpg.png``, ``a.png.png``).

Masks for inpainting: one file for every input, or a folder holding a mask named like each
input (``MASKS/<relative folder>/<stem>.<any image extension>``, ``.png`` preferred); an input
without one is planned anyway and fails with that reason, so the rest of the batch still runs.

Prompts: one per line of a text file; blank lines and lines starting with ``#`` are skipped.
``count`` images per prompt, each its own file ``<line>-<k>.png``; the seed of image ``k`` of
the prompt on line ``n`` (1-based) is ``seed + (n - 1) * PROMPT_SEED_STRIDE + k``, so the
seeds do not depend on ``count`` or on the other lines, and an image can be made again alone
with ``studio generate --prompt ... --seed ...``.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.batch.contract import BatchItem, BatchSpec
from studio.engine.batch.manifest import file_sha256, options_hash
from studio.errors import BadInputError, StudioError
from studio.imageio import WRITE_EXTENSIONS
from studio.models.registry import get_model
from studio.task_kind import TaskKind

if TYPE_CHECKING:
    from studio.engine.tasks.preflight import ImageSize

#: files a batch reads as inputs (and masks): every image format Studio reads, and projects
INPUT_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ora"})
DEFAULT_EXTENSION = ".png"
#: seeds of consecutive prompt lines are this far apart (at most this many images per prompt)
PROMPT_SEED_STRIDE = 1000


def make_spec(
    task: TaskKind,
    params: Any,
    out_dir: str | os.PathLike[str],
    engine: dict[str, Any] | None = None,
    labels: bool = True,
) -> BatchSpec:
    """A :class:`BatchSpec` with its options hash (the task, the params, the labels, the
    engine settings that change output bytes and the weights the params name)."""
    engine = dict(engine or {})
    shaping = {k: engine.get(k) for k in ("precision", "compile", "device")}
    extra = {"labels": labels, "engine": shaping, "weights": weights_fingerprint(params)}
    digest = options_hash(task, params, extra)
    return BatchSpec(task, params, str(Path(out_dir).resolve()), digest, engine, labels)


def weights_fingerprint(params: Any) -> dict[str, str]:
    """The content of every model or file a task's params name, by its sha256: a registry id
    by the hashes its registry entry pins, a path (artists' own weights, a style painting) by
    hashing the file. A batch resumed after ``my-esrgan.pth`` was replaced redoes its files."""
    found: dict[str, str] = {}
    values = (
        [getattr(params, f.name) for f in dataclasses.fields(params)]
        if dataclasses.is_dataclass(params)
        else []
    )
    for value in values:
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            continue
        path = Path(value)
        try:
            if path.is_file():
                found[str(value)] = file_sha256(path)
                continue
            spec = get_model(str(value))
        except (OSError, StudioError):
            continue
        if spec.files:
            found[str(value)] = ",".join(f.sha256 for f in spec.files)
    return found


def plan_batch(
    task: TaskKind,
    in_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    recursive: bool = False,
    extension: str = DEFAULT_EXTENSION,
    mask: str | None = None,
    masks_dir: str | None = None,
    prompts: str | None = None,
    count: int = 1,
    seed: int = 0,
) -> list[BatchItem]:
    """The items of a batch, in a stable order. Inputs come from ``in_dir`` or, with
    ``prompts`` (a prompt-list file), from its lines (``in_dir`` is then None)."""
    extension = _extension(extension)
    if prompts is not None:
        return plan_prompts(prompts, count, seed, extension)
    if in_dir is None:
        raise BadInputError(f"batch {task}: give an input folder")
    sources = input_files(in_dir, recursive=recursive, exclude=out_dir)
    if not sources:
        where = " or its sub-folders" if recursive else " (--recursive reads sub-folders)"
        raise BadInputError(f"{in_dir}: no images in this folder{where}")
    root = Path(in_dir).resolve()
    relative = [p.relative_to(root) for p in sources]
    names = Counter(r.with_suffix(extension).as_posix().lower() for r in relative)
    items = []
    for path, rel in zip(sources, relative, strict=True):
        out = rel.with_suffix(extension)
        if names[out.as_posix().lower()] > 1:
            out = rel.with_name(rel.name + extension)
        mask_file = _mask_for(rel, mask, masks_dir)
        items.append(BatchItem(rel.as_posix(), out.as_posix(), source=str(path), mask=mask_file))
    return items


def input_files(
    in_dir: str | os.PathLike[str],
    *,
    recursive: bool = False,
    exclude: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Image files of ``in_dir`` (absolute), sorted by relative path; hidden ones left out."""
    root = Path(in_dir)
    if not root.is_dir():
        raise BadInputError(f"{in_dir}: no such folder")
    root = root.resolve()
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (skip is None or here / d != skip)
        )
        if not recursive:
            dirs.clear()
        for name in files:
            p = here / name
            if not name.startswith(".") and p.suffix.lower() in INPUT_SUFFIXES and p.is_file():
                found.append(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def plan_prompts(
    path: str, count: int = 1, seed: int = 0, extension: str = ".png"
) -> list[BatchItem]:
    """One item per image per prompt line of ``path`` (see the module docstring)."""
    if not 1 <= count <= PROMPT_SEED_STRIDE:
        raise BadInputError(f"--count must be from 1 to {PROMPT_SEED_STRIDE} per prompt")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such prompt file") from None
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not a UTF-8 text file of prompts") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        prompt = line.strip()
        if not prompt or prompt.startswith("#"):
            continue
        for k in range(count):
            name = f"{number:04d}-{k + 1:02d}"
            item_seed = seed + (number - 1) * PROMPT_SEED_STRIDE + k
            items.append(
                BatchItem(f"prompt-{name}", name + extension, prompt=prompt, seed=item_seed)
            )
    if not items:
        raise BadInputError(f"{path}: no prompts (one per line; # starts a comment)")
    return items


def _mask_for(rel: Path, mask: str | None, masks_dir: str | None) -> str | None:
    if mask is not None:
        return str(Path(mask).resolve())
    if masks_dir is None:
        return None
    folder = (Path(masks_dir) / rel).parent.resolve()
    candidates = sorted(
        (
            p
            for p in folder.glob(_glob_escape(rel.stem) + ".*")
            if p.suffix.lower() in INPUT_SUFFIXES
        ),
        key=lambda p: (p.suffix.lower() != ".png", p.name),
    )
    return str(candidates[0] if candidates else folder / (rel.stem + ".png"))


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _extension(extension: str) -> str:
    ext = extension.lower() if extension.startswith(".") else "." + extension.lower()
    if ext not in WRITE_EXTENSIONS | {".ora"}:
        allowed = ", ".join(sorted(e.lstrip(".") for e in WRITE_EXTENSIONS | {".ora"}))
        raise BadInputError(f"cannot write '{extension}' outputs (use one of {allowed})")
    return ext


def input_sizes(items: list[BatchItem]) -> list[ImageSize] | None:
    """The sizes of the items' input files, read from their headers; an unreadable file is left
    out (it fails on its own, with its reason). None when an item has no input file
    (generate from prompts)."""
    from studio.engine.tasks.preflight import ImageSize
    from studio.project_io import read_input_header

    sizes = []
    for item in items:
        if item.source is None:
            return None
        try:
            header = read_input_header(item.source)
        except (StudioError, OSError):
            continue
        sizes.append(ImageSize(header.width, header.height, header.channels, header.itemsize))
    return sizes
