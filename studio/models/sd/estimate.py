"""Peak memory and time of a Stable Diffusion run, estimated before it starts, and the refusal
of a run that cannot fit ("needs X GiB, Y GiB available").

Memory = the weights (parameter count x bytes per parameter) + the larger of the UNet's working
memory (latent cells x batch rows x the activation bytes a cell keeps alive: skip connections,
the widest block's intermediates, and an attention term that grows with the token count) and
the VAE decoder's (full-resolution feature maps; one image at a time, in tiles above
:data:`~studio.models.sd.backend.VAE_TILING_ABOVE`) + the finished images.
Time = steps x (a measured seconds-per-step when the caller knows one, else a FLOP count over a
rough device throughput), scaled by batch rows and latent cells.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.errors import BadInputError
from studio.models.sd.backend import VAE_TILING_ABOVE
from studio.models.sd.model import SDFamily, SDModel

#: parameter counts of the released models (UNet, VAE, text encoders together)
FAMILY_PARAMS: dict[SDFamily, int] = {
    SDFamily.SD1: 859_520_964 + 83_653_863 + 123_060_480,
    SDFamily.SD2: 865_910_724 + 83_653_863 + 340_387_840,
    SDFamily.SDXL: 2_567_463_684 + 83_653_863 + 123_060_480 + 694_659_841,
    SDFamily.SDXL_REFINER: 2_299_000_000 + 83_653_863 + 694_659_841,
}
#: UNet activation values alive at once per latent cell and batch row: ``base + slope * cells``
#: (attention makes it grow slowly with the token count). SD 1.x measured on this CPU with
#: ``torch.nn.functional.scaled_dot_product_attention`` (bf16, true-size random UNet): 15.5 k
#: values a cell at 256x256, 20.0 k at 512x512. SDXL (no attention at the top level) is an
#: unmeasured, deliberately generous guess.
UNET_VALUES_PER_CELL: dict[SDFamily, tuple[float, float]] = {
    SDFamily.SD1: (14_000, 1.5),
    SDFamily.SD2: (14_000, 1.5),
    SDFamily.SDXL: (10_000, 0.1),
    SDFamily.SDXL_REFINER: (10_000, 0.1),
}
#: VAE decoder activation values alive at once per output pixel (SD and SDXL share the shape;
#: measured here in fp32: about 1 000 at 512x512, 1 200 at 256x256)
VAE_VALUES_PER_PIXEL = 1_000
#: the VAE decoder's tile side when tiling (diffusers' ``tile_sample_min_size`` for SD 1.x)
VAE_TILE = 512
#: UNet FLOPs per latent cell and batch row (SD 1.5 at 512x512 is about 0.8 TFLOP a call)
UNET_FLOPS_PER_CELL: dict[SDFamily, float] = {
    SDFamily.SD1: 0.8e12 / 4096,
    SDFamily.SD2: 0.8e12 / 4096,
    SDFamily.SDXL: 6.0e12 / 16384,
    SDFamily.SDXL_REFINER: 5.0e12 / 16384,
}
#: sustained FLOP/s assumed when no step was measured (deliberately modest; the CPU's per core)
DEVICE_FLOPS = {"cpu_core": 0.05e12, "mps": 5e12, "cuda": 40e12}
#: the VAE decode of one image costs about this many UNet calls of one row (CPU: the VAE runs
#: in fp32, measured 54 s against 19 s a bf16 UNet row at 512x512 on a busy 2-core machine)
DECODE_IN_STEPS = {"cpu": 3.0}
DEFAULT_DECODE_IN_STEPS = 2.0
LATENT_FACTOR = 8


@dataclass(frozen=True)
class RunEstimate:
    """``peak_bytes`` = ``weights_bytes`` + ``working_bytes``; ``seconds`` for the whole run."""

    peak_bytes: int
    seconds: float
    weights_bytes: int = 0
    working_bytes: int = 0

    def summary(self) -> str:
        return f"about {gib(self.peak_bytes)} of memory and {self.seconds:.0f} s"


def estimate_run(
    model: SDModel | SDFamily,
    width: int,
    height: int,
    count: int = 1,
    steps: int = 20,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    guidance: bool = True,
    step_seconds: float | None = None,
    parameters: int | None = None,
) -> RunEstimate:
    """Estimate a run of ``count`` images of ``width`` x ``height`` in ``steps`` steps.

    ``model``: a loaded model (its parameters are counted in the dtypes they were prepared in:
    after the engine's tuning a bf16 UNet counts 2 bytes a value, its fp32 text encoder 4; its
    UNet's dtype and device are used unless given) or just a family (then ``dtype`` defaults
    to fp16 on a GPU, fp32 on the CPU, and ``parameters`` to the released model's count).
    ``guidance``: classifier-free guidance doubles the UNet's batch. ``step_seconds``: a
    measured time of one UNet call of one image at the family's native size on this device.
    """
    if isinstance(model, SDModel):
        family = model.family
        weights, model_dtype, model_device = _weight_bytes(model.pipe)
        vae_itemsize = _vae_itemsize(model.pipe.vae)
        dtype = dtype or model_dtype
        device = device or model_device
    else:
        family, weights, vae_itemsize = model, None, None
    kind = torch.device(device or "cpu").type
    dtype = dtype or (torch.float32 if kind == "cpu" else torch.float16)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if weights is None and parameters is not None:
        weights = parameters * itemsize

    rows = count * (2 if guidance else 1)
    cells = (width // LATENT_FACTOR) * (height // LATENT_FACTOR)
    base, slope = UNET_VALUES_PER_CELL[family]
    unet_bytes = int(rows * cells * (base + slope * cells) * itemsize)
    decode_px = width * height
    if max(width, height) > VAE_TILING_ABOVE:
        decode_px = min(width, VAE_TILE) * min(height, VAE_TILE)
    vae_bytes = decode_px * VAE_VALUES_PER_PIXEL * (vae_itemsize or itemsize)
    images = count * width * height * 3 * 5  # uint8 results and one float copy being made
    working = max(unet_bytes, vae_bytes) + images
    if weights is None:
        weights = FAMILY_PARAMS[family] * itemsize

    native_side = 1024 if family in (SDFamily.SDXL, SDFamily.SDXL_REFINER) else 512
    native_cells = (native_side // LATENT_FACTOR) ** 2
    if step_seconds is None:
        speed = DEVICE_FLOPS.get(kind, DEVICE_FLOPS["cpu_core"] * (os.cpu_count() or 1))
        step_seconds = UNET_FLOPS_PER_CELL[family] * native_cells / speed
    per_row_call = step_seconds * cells / native_cells
    decode = DECODE_IN_STEPS.get(kind, DEFAULT_DECODE_IN_STEPS)
    seconds = per_row_call * (rows * steps + decode * count)
    return RunEstimate(weights + working, seconds, weights, working)


def check_fits(estimate: RunEstimate, budget_bytes: int, *, weights_loaded: bool = False) -> None:
    """Refuse a run whose memory exceeds ``budget_bytes`` (the memory the run may use); with
    ``weights_loaded`` the weights are already resident and only the working memory counts."""
    need = estimate.working_bytes if weights_loaded else estimate.peak_bytes
    if need > budget_bytes:
        parts = (
            ""
            if weights_loaded
            else (
                f" ({gib(estimate.weights_bytes)} of weights and {gib(estimate.working_bytes)} to "
                "work)"
            )
        )
        raise BadInputError(
            f"this run needs {gib(need)}{parts}, {gib(budget_bytes)} available; choose a "
            "smaller size or fewer images, or close other programs"
        )


#: key prefixes of the parts a checkpoint's pipeline is built from (EMA copies and other
#: extras in the file are not loaded, so not counted)
_LOADED_PREFIXES = (
    "model.diffusion_model.",
    "first_stage_model.",
    "cond_stage_model.",
    "conditioner.",
)
_FOLDER_PARTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def estimate_source(
    path: Path,
    side: int | None,
    count: int = 1,
    steps: int = 20,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    guidance: bool = True,
) -> RunEstimate | None:
    """The estimate of a run of a model not loaded yet, from what its files say without
    reading their weights (a safetensors header, a ``.ckpt``'s index, a folder's configs and
    headers): its family and parameter count. ``side``: the images' side (None: the family's
    own). None when the file cannot tell (an old-format ``.ckpt``): loading will."""
    found = source_parameters(Path(path))
    if found is None:
        return None
    family, parameters = found
    if side is None:
        side = 1024 if family in (SDFamily.SDXL, SDFamily.SDXL_REFINER) else 512
    return estimate_run(
        family,
        side,
        side,
        count,
        steps,
        dtype=dtype,
        device=device,
        guidance=guidance,
        parameters=parameters,
    )


def source_parameters(path: Path) -> tuple[SDFamily, int] | None:
    """(family, parameters that will be loaded) of a checkpoint file or diffusers folder, read
    from headers and configs only; None when they do not say."""
    from studio.models.sd.family import detect_family, family_of_unet_config
    from studio.models.sd.header import read_safetensors_header
    from studio.models.sd.loading import OldFormatError, pickle_shapes

    def shapes_of(file: Path) -> dict[str, tuple[int, ...]]:
        if file.suffix.lower() == ".safetensors":
            return read_safetensors_header(file).shapes
        return pickle_shapes(file, read_legacy=False)

    try:
        if not path.is_dir():
            shapes = shapes_of(path)
            family, _inpainting = detect_family(shapes)
            return family, _count(v for k, v in shapes.items() if k.startswith(_LOADED_PREFIXES))
        config = json.loads((path / "unet" / "config.json").read_text(encoding="utf-8"))
        family, _inpainting = family_of_unet_config(config)
        total = 0
        for part in _FOLDER_PARTS:
            files = _weight_files(path / part)
            total += sum(_count(shapes_of(f).values()) for f in files)
        return family, total
    except (OldFormatError, OSError, ValueError):
        return None


def _weight_files(folder: Path) -> list[Path]:
    """The files diffusers loads for one part: its safetensors (shards included) when there
    are any, else its ``.bin`` files; variants (``*.fp16.*``, ``*.non_ema.*``) are not loaded."""
    if not folder.is_dir():
        return []
    for suffix in (".safetensors", ".bin"):
        files = [f for f in sorted(folder.glob(f"*{suffix}")) if len(f.name.split(".")) == 2]
        if files:
            return files
    return []


def _count(shapes) -> int:
    return sum(math.prod(shape) for shape in shapes)


def gib(n: int) -> str:
    """``n`` bytes in GiB to one decimal, or in MiB below a tenth of a GiB."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 / 10 else f"{max(1, n >> 20)} MiB"


def _vae_itemsize(vae: Any) -> int:
    """Bytes per value the VAE computes in (an fp16 VAE that overflows there runs in fp32)."""
    dtype = next(vae.parameters()).dtype
    if dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        return 4
    return torch.empty((), dtype=dtype).element_size()


def _weight_bytes(pipe: Any) -> tuple[int, torch.dtype, torch.device]:
    """Bytes of the pipeline's networks, and the UNet's dtype and device."""
    total, dtype, device = 0, torch.float32, torch.device("cpu")
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, name, None)
        if module is None:
            continue
        for p in module.parameters():
            total += p.numel() * p.element_size()
        if name == "unet":
            first = next(module.parameters())
            dtype, device = first.dtype, first.device
    return total, dtype, device
