"""A Stable Diffusion pipeline set up to run fast on the device at hand.

:func:`prepare_pipeline` puts each network in its precision and memory layout: fp16 on CUDA;
on the CPU the precision measured fastest for the UNet on this machine (the engine measures it
once per machine with :func:`unet_probe` and remembers it, see
:mod:`studio.engine.tasks.sd_tuning`). Measured here (Xeon with AMX, 2 threads, SD 1.5 UNet,
64x64 latents, batch 2): fp32 22 s per call, bf16 autocast 15 s, bf16 weights 5.2 s, so bf16
means bf16 *weights*, never autocast (autocast casts every weight on every call).

Convolutions run channels_last (oneDNN's blocked kernels: the bf16 UNet step took about half
the time here; the fp32 VAE decode 1.5x less).
Attention runs through PyTorch's ``scaled_dot_product_attention`` (diffusers'
``AttnProcessor2_0``): its fused CPU and CUDA kernels never hold the full attention matrix
(8 heads x 8192 tokens here: 14 MiB more peak memory where the matrix alone is 2 GiB), so
attention slicing (which replaces those kernels with a Python loop) is used only where SDPA has
no such kernel (Apple MPS) and the image is large. The VAE works in tiles for large images.

The text encoders stay fp32 on the CPU: they run once per job, so reduced precision there buys
nothing. The VAE has its own precision (its output is pixels, so the engine measures it against
the pixel tolerance every other image model meets).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

#: the latent size the UNet's precision is measured at: 32x32 (256x256 pixels), batch 1. The
#: tuner needs the bf16/fp32 ratio and the error, not a full step: at 64x64 and batch 2 the first
#: measurement took 320 s on a busy 2-core machine; this one runs the same kernels on 1/8 the data
PROBE_LATENT = (32, 32)
#: the VAE's precision is measured decoding 128x128 pixels (same kernels as 512²)
VAE_PROBE_LATENT = (16, 16)
#: images with a side above this decode and encode through the VAE in tiles
VAE_TILING_ABOVE = 1024
#: latent tokens (h*w) above which attention is sliced where SDPA has no fused kernel
ATTENTION_SLICING_TOKENS = 64 * 64
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


def working_dtype(device: torch.device, precision: str) -> torch.dtype:
    """The dtype ``precision`` ("auto", "fp32", "bf16", "fp16") means on ``device``.

    "auto": fp16 on CUDA and MPS, fp32 on the CPU (where the engine measures whether bf16 pays).
    fp16 on the CPU falls back to fp32 (no fast fp16 kernels there).
    """
    if precision not in ("auto", *DTYPES):
        raise ValueError(f"unknown precision {precision!r}")
    if precision == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    if precision == "fp16" and device.type == "cpu":
        return torch.float32
    return DTYPES[precision]


def prepare_pipeline(
    pipe: Any,
    device: torch.device,
    precision: str = "auto",
    *,
    vae_precision: str | None = None,
    compiled: bool = False,
) -> Any:
    """``pipe`` (a diffusers SD / SDXL pipeline, changed in place and returned) set up to run on
    ``device``: the UNet in ``precision`` (see :func:`working_dtype`), the VAE in
    ``vae_precision`` (default: the same), the text encoders in fp32 on the CPU and in the
    UNet's dtype elsewhere; channels_last convolutions; SDPA attention; the UNet compiled with
    ``torch.compile`` when ``compiled``. Calling it again with the same arguments is cheap.
    """
    dtype = working_dtype(device, precision)
    vae_dtype = working_dtype(device, vae_precision or precision)
    text_dtype = torch.float32 if device.type == "cpu" else dtype
    _place(pipe.unet, device, dtype, channels_last=True)
    _place(pipe.vae, device, vae_dtype, channels_last=True)
    for name in _TEXT_ENCODERS:
        if (encoder := getattr(pipe, name, None)) is not None:
            _place(encoder, device, text_dtype, channels_last=False)
    use_sdpa(pipe.unet)
    use_sdpa(pipe.vae)
    if compiled and getattr(pipe.unet, "_compiled_call_impl", None) is None:
        pipe.unet.compile()  # in place: pipe.unet stays the UNet (its .config and all)
    return pipe


def configure_for_size(pipe: Any, width: int, height: int) -> None:
    """VAE tiling and attention slicing for a run of ``width`` x ``height`` pixels, each on only
    when the size needs it (both cost speed at small sizes)."""
    vae = pipe.vae
    vae.use_tiling = max(width, height) > VAE_TILING_ABOVE
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    tokens = (width // factor) * (height // factor)
    device = next(pipe.unet.parameters()).device
    if device.type == "mps" and tokens > ATTENTION_SLICING_TOKENS:
        pipe.enable_attention_slicing()
    elif any(_is_sliced(p) for p in pipe.unet.attn_processors.values()):
        use_sdpa(pipe.unet, replace_sliced=True)


def use_sdpa(module: Any, replace_sliced: bool = False) -> int:
    """Put ``AttnProcessor2_0`` (PyTorch SDPA) on every attention layer of ``module`` that runs
    the plain processor (and the sliced one when ``replace_sliced``); other processors (IP
    adapters, custom ones) are left alone. Returns how many layers were switched."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    plain = (AttnProcessor, *((_sliced_types()) if replace_sliced else ()))
    switched = 0
    for layer in module.modules():
        processor = getattr(layer, "processor", None)
        if hasattr(layer, "set_processor") and isinstance(processor, plain):
            layer.set_processor(AttnProcessor2_0())
            switched += 1
    return switched


def uses_sdpa(module: Any) -> bool:
    """True when every attention layer of ``module`` runs through SDPA."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = [m.processor for m in module.modules() if hasattr(m, "set_processor")]
    return bool(processors) and all(isinstance(p, AttnProcessor2_0) for p in processors)


def unet_probe(
    pipe: Any, latent: tuple[int, int] = PROBE_LATENT, seed: int = 0, batch: int = 1
) -> tuple[np.ndarray, Callable[[str, bool], Callable[[np.ndarray], np.ndarray]]]:
    """What the engine's tuner measures for the UNet: a sample latent (h x w x C float32) and
    ``build(precision, compiled)`` giving one UNet call on it (``batch`` rows; 2 is what
    classifier-free guidance runs, 1 measures the same kernels at half the cost) -> the noise
    prediction, h x w x C float32.

    Outputs are divided by the mean magnitude of the first (fp32) prediction, so the tuner's
    errors are relative to the prediction's size, whatever the weights. The fp32 variant runs
    the pipeline's own UNet when it is fp32; others run a converted copy (never the original).
    """
    unet = pipe.unet
    config = unet.config
    g = torch.Generator("cpu").manual_seed(seed)
    sample = torch.randn((*latent, config.in_channels), generator=g).numpy()
    width = getattr(config, "cross_attention_dim", 768)
    width = width[0] if isinstance(width, (list, tuple)) else width
    states = torch.randn((batch, 77, int(width)), generator=g)
    extra = _added_conditions(unet, states.shape[0], latent, g)
    scale: list[float] = []

    def build(precision: str, compiled: bool) -> Callable[[np.ndarray], np.ndarray]:
        device = next(unet.parameters()).device
        dtype = working_dtype(device, precision)
        net = unet if next(unet.parameters()).dtype == dtype else converted_copy(unet, dtype)
        if device.type == "cpu":
            net = net.to(memory_format=torch.channels_last)
        run = torch.compile(net) if compiled else net
        cond = states.to(device, dtype)
        added = {k: v.to(device, dtype) for k, v in extra.items()}
        t = torch.tensor(500, device=device)

        def step(x: np.ndarray) -> np.ndarray:
            z = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
            z = z.to(device, dtype).expand(batch, -1, -1, -1)
            with torch.inference_mode():
                kwargs = {"added_cond_kwargs": added} if added else {}
                out = run(z, t, encoder_hidden_states=cond, return_dict=False, **kwargs)[0]
            out = out[0].float().permute(1, 2, 0).cpu().numpy()
            if not scale:
                scale.append(float(np.abs(out).mean()) or 1.0)
            return out / scale[0]

        return step

    return sample, build


def vae_probe(
    pipe: Any, latent: tuple[int, int] = VAE_PROBE_LATENT, seed: int = 0
) -> tuple[np.ndarray, Callable[[str, bool], Callable[[np.ndarray], np.ndarray]]]:
    """The VAE decoder as the tuner measures it: a sample latent (h x w x C float32) and
    ``build(precision, compiled)`` giving its decode -> RGB (8h x 8w x 3 float32 in [0, 1]),
    so the tuner's pixel tolerance applies as for every other image model."""
    vae = pipe.vae
    g = torch.Generator("cpu").manual_seed(seed)
    sample = torch.randn((*latent, vae.config.latent_channels), generator=g).numpy()

    def build(precision: str, compiled: bool) -> Callable[[np.ndarray], np.ndarray]:
        device = next(vae.parameters()).device
        dtype = working_dtype(device, precision)
        net = vae if next(vae.parameters()).dtype == dtype else converted_copy(vae, dtype)
        if device.type == "cpu":
            net = net.to(memory_format=torch.channels_last)
        decode = torch.compile(net.decode) if compiled else net.decode

        def run(x: np.ndarray) -> np.ndarray:
            z = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
            with torch.inference_mode():
                y = decode(z.to(device, dtype), return_dict=False)[0]
            y = ((y[0].float() + 1) / 2).clamp(0, 1)
            return y.permute(1, 2, 0).cpu().numpy()

        return run

    return sample, build


def converted_copy(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy of ``module`` with floating-point weights in ``dtype``, built tensor by tensor, so
    memory peaks at the original plus the converted copy (not twice the original)."""
    memo: dict[int, Any] = {}
    for p in module.parameters():
        converted = p.detach().to(dtype) if p.is_floating_point() else p.detach().clone()
        memo[id(p)] = torch.nn.Parameter(converted, requires_grad=False)
    for b in module.buffers():
        memo[id(b)] = b.to(dtype) if b.is_floating_point() else b.clone()
    return copy.deepcopy(module, memo)


def _added_conditions(
    unet: Any, batch: int, latent: tuple[int, int], g: torch.Generator
) -> dict[str, torch.Tensor]:
    """SDXL's extra inputs (pooled text embedding and size ids), random but well-formed."""
    config = unet.config
    if getattr(config, "addition_embed_type", None) != "text_time":
        return {}
    time_dim = int(config.addition_time_embed_dim)
    pooled = int(config.projection_class_embeddings_input_dim) - 6 * time_dim
    side = [latent[0] * 8, latent[1] * 8]
    ids = torch.tensor([[*side, 0, 0, *side]], dtype=torch.float32).expand(batch, -1)
    return {"text_embeds": torch.randn((batch, pooled), generator=g), "time_ids": ids}


def _place(module: Any, device: torch.device, dtype: torch.dtype, channels_last: bool) -> None:
    param = next(module.parameters())
    if param.device != device or param.dtype != dtype:
        from diffusers.utils import logging as diffusers_logging

        # diffusers warns on every cast of a model that has no fp32-only parts ("[]")
        level = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()
        try:
            module.to(device=device, dtype=dtype)
        finally:
            diffusers_logging.set_verbosity(level)
    if channels_last and device.type != "mps":
        module.to(memory_format=torch.channels_last)


def _sliced_types() -> tuple[type, ...]:
    from diffusers.models.attention_processor import SlicedAttnProcessor

    return (SlicedAttnProcessor,)


def _is_sliced(processor: Any) -> bool:
    return isinstance(processor, _sliced_types())
