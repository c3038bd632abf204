"""The one explicit list of models Studio ships, and lookup by id."""

from __future__ import annotations

from studio.errors import MissingModelError
from studio.models.spec import ModelFile, ModelSpec

CLASSICAL_UPSCALERS = (
    ModelSpec(
        id="lanczos",
        name="Lanczos",
        task="upscale",
        arch="classical",
        description="Sharp classical resampling; no new detail. Instant.",
        scale=1,
        bytes_per_px=64,
        mpx_per_s=60,
        speed_hint="instant",
        license="n/a",
    ),
    ModelSpec(
        id="bicubic",
        name="Bicubic",
        task="upscale",
        arch="classical",
        description="Smooth classical resampling; no new detail. Instant.",
        scale=1,
        bytes_per_px=64,
        mpx_per_s=60,
        speed_hint="instant",
        license="n/a",
    ),
)

CLASSICAL_INPAINTERS = (
    ModelSpec(
        id="telea",
        name="Telea (fast marching)",
        task="inpaint",
        arch="classical",
        description="Smoothly continues the surrounding colours inward. Best for thin scratches, "
        "wires and small blemishes.",
        max_side=2048,
        speed_hint="instant",
        license="n/a",
    ),
    ModelSpec(
        id="navier-stokes",
        name="Navier-Stokes",
        task="inpaint",
        arch="classical",
        description="Fluid-dynamics diffusion that follows edges into the hole. Small defects.",
        max_side=2048,
        speed_hint="instant",
        license="n/a",
    ),
    ModelSpec(
        id="patchmatch",
        name="PatchMatch (content-aware fill)",
        task="inpaint",
        arch="classical",
        description="Copies real texture from the rest of the image: grass, walls, sky, fabric.",
        max_side=512,
        speed_hint="~1 s",
        license="n/a",
    ),
)

MODELS: tuple[ModelSpec, ...] = (*CLASSICAL_UPSCALERS, *CLASSICAL_INPAINTERS)

_BY_ID = {spec.id: spec for spec in MODELS}
if len(_BY_ID) != len(MODELS):
    raise RuntimeError("duplicate model ids in the registry")


def all_models(task: str | None = None) -> list[ModelSpec]:
    return [m for m in MODELS if task is None or m.task == task]


def get_model(model_id: str, task: str | None = None) -> ModelSpec:
    """The spec for ``model_id``; a clear error naming the valid ids otherwise."""
    spec = _BY_ID.get(model_id)
    if spec is None or (task is not None and spec.task != task):
        names = ", ".join(m.id for m in all_models(task))
        what = f"{task} model" if task else "model"
        raise MissingModelError(f"unknown {what} '{model_id}' (available: {names})")
    return spec


__all__ = ["MODELS", "ModelFile", "ModelSpec", "all_models", "get_model"]
