"""Safe loading of weight files: safetensors first, ``torch.load(weights_only=True)`` for
``.pth``/``.pt``/``.ckpt``, anything else refused. A pickle that tries to run code is refused
without running it. Architectures are recognised by keys and shapes (ours first, then spandrel's
MIT-licensed core for user files, then ``spandrel_extra_arches`` when the artist has installed it:
that package holds MAT and other architectures under non-commercial licences, so Studio never
depends on it).
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from spandrel import ArchRegistry

from studio.errors import BadWeightsError, MissingModelError
from studio.models.arch import LoadedModel
from studio.models.architectures import detect_architecture
from studio.models.spec import ModelSpec
from studio.paths import checkpoints_dir

SAFETENSORS = (".safetensors",)
TORCH_PICKLES = (".pth", ".pt", ".ckpt", ".bin")
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "generator", "net_g")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weight file, unwrapped from common training wrappers, on the CPU."""
    p = Path(path)
    if not p.is_file():
        raise MissingModelError(f"{p}: weight file not found")
    suffix = p.suffix.lower()
    if suffix in SAFETENSORS:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise BadWeightsError(f"{p.name}: not a valid safetensors file ({exc})") from None
        check_finite_weights(state, p.name)
        return state
    if suffix in TORCH_PICKLES:
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            text = str(exc)
            if "global" not in text.lower():  # not a code payload: plain corruption
                raise BadWeightsError(f"{p.name}: not a readable PyTorch weight file") from None
            found = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln), "")
            raise BadWeightsError(
                f"{p.name}: refused — the file holds Python objects or code, not just weights"
                f"{f' ({found[:120]})' if found else ''}. Convert it to .safetensors with a "
                "trusted tool."
            ) from None
        except (RuntimeError, OSError, EOFError, ValueError) as exc:
            raise BadWeightsError(f"{p.name}: not a readable PyTorch weight file ({exc})") from None
        state = _unwrap(obj, p.name)
        check_finite_weights(state, p.name)
        return state
    raise BadWeightsError(
        f"{p.name}: unsupported weight format '{suffix}' (use .safetensors, .pth, .pt or .ckpt)"
    )


def check_finite_weights(state: Mapping[str, torch.Tensor], name: str) -> None:
    """Refuse weights holding NaN or infinity: they would paint black and report success.

    A float64 sum per tensor is finite exactly when every value is (NaN and infinity propagate;
    finite float32 values cannot overflow it), and is several times faster than
    ``isfinite(t).all()``: realesrgan-x4plus (16.7 M values) in ~45 ms against ~400 ms here."""
    bad = [
        key
        for key, t in state.items()
        if t.is_floating_point() and not bool(torch.isfinite(t.sum(dtype=torch.float64)))
    ]
    if bad:
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise BadWeightsError(
            f"{name}: tensor '{bad[0]}'{more} holds NaN or infinity instead of numbers; "
            "the file is damaged or came from a diverged training run"
        )


def _unwrap(obj: object, name: str) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_tensor_dict(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_tensor_dict(obj):
        raise BadWeightsError(f"{name}: no tensors found in the file")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    return {k.removeprefix("module."): v for k, v in state.items()}


def _is_tensor_dict(obj: Mapping) -> bool:
    return bool(obj) and any(isinstance(v, torch.Tensor) for v in obj.values())


def load_weights(path: str | Path, expected_sha256: str | None = None) -> LoadedModel:
    """Read, optionally verify, detect and build a model from one weight file."""
    p = Path(path)
    if expected_sha256 is not None and p.is_file() and sha256_of(p) != expected_sha256:
        raise BadWeightsError(
            f"{p.name}: checksum mismatch — the file is damaged or was replaced; "
            "restore it from the Studio download"
        )
    state = read_state_dict(p)
    return build_model(state, p.name)


def registered_files(spec: ModelSpec) -> list[tuple[Path, str]]:
    """(path, expected sha256) of every shipped weight file of a registry model; a clear
    :class:`MissingModelError` when it has none or one is not on this machine."""
    if not spec.files:
        raise MissingModelError(f"model '{spec.id}' has no weight files")
    folder = checkpoints_dir()
    found = []
    for f in spec.files:
        path = folder / f.name
        if not path.is_file():
            raise MissingModelError(
                f"model '{spec.id}': weight file {f.name} is missing from {folder}"
            )
        found.append((path, f.sha256))
    return found


def load_registered(spec: ModelSpec) -> tuple[LoadedModel, ...]:
    """Every weight file of a registry model, its sha256 checked, built by the one list of
    architectures (in ``spec.files`` order). The one way shipped weights are read."""
    return tuple(load_weights(path, sha256) for path, sha256 in registered_files(spec))


def build_model(state: Mapping[str, torch.Tensor], name: str = "weights") -> LoadedModel:
    """Detect the architecture of ``state`` and build it (ours first, then spandrel)."""
    arch = detect_architecture(state)
    if arch is not None:
        try:
            return arch.load(state)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise BadWeightsError(
                f"{name}: looks like {arch.name} but does not load: {load_problem(exc)}"
            ) from None
    return _load_with_spandrel(state, name)


_SIZE_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) from "
    r"checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)"
)
_KEY_LIST = re.compile(r"(Missing|Unexpected) key\(s\) in state_dict: (.*)")
MAX_PROBLEM_CHARS = 300


def load_problem(exc: BaseException) -> str:
    """One sentence for a failed load: the first problem and how many more.

    ``load_state_dict`` lists every mismatching tensor (hundreds of lines for a large network
    built with the wrong width); the artist needs the first one and the count.
    """
    text = str(exc).strip("'\" ")
    problems = [
        f"tensor {key} is {got} in the file but the architecture expects {want}"
        for key, got, want in _SIZE_MISMATCH.findall(text)
    ]
    for kind, keys in _KEY_LIST.findall(text):
        names = re.findall(r'"([^"]+)"', keys)
        what = (
            "is missing from the file" if kind == "Missing" else "is not part of the architecture"
        )
        problems += [f"tensor {k} {what}" for k in names]
    if not problems:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        problems = lines or [type(exc).__name__]
    more = len(problems) - 1
    first = problems[0]
    if len(first) > MAX_PROBLEM_CHARS:
        first = first[: MAX_PROBLEM_CHARS - 1] + "…"
    return first + (f" (and {more} more mismatch{'es' if more > 1 else ''})" if more else "")


#: keys that mark a MAT (Mask-Aware Transformer) inpainting checkpoint
_MAT_KEYS = (
    "synthesis.first_stage.conv_first.conv.resample_filter",
    "model.synthesis.first_stage.conv_first.conv.resample_filter",
)


@functools.cache
def _extra_registry() -> ArchRegistry | None:
    """``spandrel_extra_arches``'s registry when the artist has installed it, else None."""
    try:
        from spandrel_extra_arches import EXTRA_REGISTRY
    except ImportError:
        return None
    return EXTRA_REGISTRY


@functools.cache
def _spandrel_registry() -> ArchRegistry:
    """spandrel's own architectures, then the extra ones (a copy: spandrel's global registry is
    left as it is)."""
    from spandrel import MAIN_REGISTRY

    extra = _extra_registry()
    if extra is None:
        return MAIN_REGISTRY
    registry = MAIN_REGISTRY.copy()
    registry.add(*extra, ignore_duplicates=True)
    return registry


def _unsupported(state: Mapping[str, torch.Tensor], name: str) -> BadWeightsError:
    if any(k in state for k in _MAT_KEYS) and _extra_registry() is None:
        return BadWeightsError(
            f"{name}: a MAT inpainting checkpoint. MAT's code is licensed for non-commercial use "
            "only, so Studio does not ship it; to use this file, install it yourself with "
            "'pip install spandrel_extra_arches' (check its licence first) and restart Studio."
        )
    return BadWeightsError(f"{name}: not an architecture Studio recognises")


def _load_with_spandrel(state: Mapping[str, torch.Tensor], name: str) -> LoadedModel:
    from spandrel import (
        ImageModelDescriptor,
        MaskedImageModelDescriptor,
        ModelLoader,
        UnsupportedModelError,
    )

    try:
        descriptor = ModelLoader(registry=_spandrel_registry()).load_from_state_dict(dict(state))
    except UnsupportedModelError:
        raise _unsupported(state, name) from None
    except (RuntimeError, ValueError, KeyError) as exc:
        raise BadWeightsError(
            f"{name}: recognised but failed to load: {load_problem(exc)}"
        ) from None
    # masked models (LaMa and other inpainters) take (image, mask): InpaintModel calls them so
    if not isinstance(descriptor, ImageModelDescriptor | MaskedImageModelDescriptor):
        raise BadWeightsError(
            f"{name}: {descriptor.architecture.name} is not an image-to-image model"
        )
    req = descriptor.size_requirements
    return LoadedModel(
        module=descriptor.model.eval(),
        arch_id=f"spandrel:{descriptor.architecture.id}",
        scale=descriptor.scale,
        in_channels=descriptor.input_channels,
        out_channels=descriptor.output_channels,
        size_multiple=max(1, req.multiple_of),
        supports_half=descriptor.supports_half,
        receptive_field=64,  # unknown architecture: generous context (attention sees far)
        extra={
            "purpose": descriptor.purpose,
            "architecture": descriptor.architecture.name,
            "min_size": req.minimum,
            "square": req.square,
        },
    )
