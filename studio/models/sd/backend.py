"""Stable Diffusion behind Studio's denoising contract: text-to-image, img2img and prompted
inpaint (outpaint is an inpaint of a canvas the engine extended), one preview per step.

The denoising loop is driven here with the loaded pipeline's own parts (its ``encode_prompt``,
UNet, VAE and scheduler config) rather than by calling the pipeline, so that the run is a plain
generator: it yields between steps, and an engine that stops iterating (Cancel) leaves nothing
half-done. Each step works inside its own ``inference_mode`` block, so no torch state stays
switched while the engine holds the generator. Latents and scheduler arithmetic stay in fp32;
only the networks run in the model's dtype.

Determinism: image ``i`` starts from ``torch.Generator("cpu").manual_seed(seed + i)`` noise in
fp32 (then moved to the device), and that generator alone feeds image ``i``'s stochastic
sampler steps, so a seed gives the same image on any machine and inside any batch.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from studio.errors import BadInputError
from studio.models.diffusion_api import DenoiseRequest, DenoiseStep
from studio.models.sd import conditioning
from studio.models.sd.model import SDModel
from studio.models.sd.preview import latent_preview
from studio.models.sd.schedule import build_scheduler, choose_settings, run_timesteps

#: images with a side above this are encoded and decoded by the VAE in tiles
VAE_TILING_ABOVE = 1024
_SEED_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class _Job:
    """A checked request: sizes resolved, inputs as arrays of the working size."""

    width: int
    height: int
    count: int
    init: np.ndarray | None
    mask: np.ndarray | None  # bool HxW, True = repaint


class SDBackend:
    """A loaded :class:`SDModel` as a :class:`~studio.models.diffusion_api.DenoiseBackend`."""

    def __init__(self, model: SDModel) -> None:
        self.model = model
        self.native_size: tuple[int, int] = model.native_size

    @property
    def vae_factor(self) -> int:
        """Pixels per latent cell along each side (8 for every released SD VAE)."""
        return 2 ** (len(self.model.pipe.vae.config.block_out_channels) - 1)

    def denoise(self, request: DenoiseRequest) -> Generator[DenoiseStep, None, np.ndarray]:
        """Yield one :class:`DenoiseStep` per step; return uint8 [count, height, width, 3].

        With ``init`` and ``strength`` 0 the input comes back exactly (no step runs). With a
        ``mask``, pixels where it is 0 come back identical to ``init``.
        """
        job = self._check(request)
        if job.init is not None and request.strength <= 0:
            return np.repeat(job.init[None], job.count, axis=0)
        pipe, family = self.model.pipe, self.model.family
        unet = pipe.unet
        device, dtype = _device_dtype(unet)
        inpaint_unet = unet.config.in_channels == 9
        embedded = conditioning.guidance_is_embedded(unet)
        settings = choose_settings(self.model, request, guidance_embedded=embedded)
        cfg = settings.guidance > 1 and not embedded
        strength = 1.0 if job.init is None else float(request.strength)

        with torch.inference_mode():
            cond = conditioning.encode(
                self.model,
                request.prompt,
                request.negative,
                count=job.count,
                cfg=cfg,
                guidance=settings.guidance,
                size=(job.width, job.height),
                device=device,
                dtype=dtype,
            )
            scheduler = build_scheduler(settings)
            timesteps = run_timesteps(scheduler, settings.steps, strength, device)
            h, w = job.height // self.vae_factor, job.width // self.vae_factor
            generators = [
                torch.Generator("cpu").manual_seed((request.seed + i) & _SEED_MASK)
                for i in range(job.count)
            ]
            channels = unet.config.out_channels
            noise = torch.cat([torch.randn((1, channels, h, w), generator=g) for g in generators])
            noise = noise.to(device)
            init_latents = keep = extra = None
            if job.init is not None:
                init_latents = self._encode(_to_unit(job.init, device)).expand(
                    job.count, -1, -1, -1
                )
            if inpaint_unet:
                extra = self._inpaint_inputs(job, (h, w), device, cfg)
            elif job.mask is not None:
                repaint = torch.from_numpy(job.mask).to(device, torch.float32)[None, None]
                keep = 1.0 - F.max_pool2d(repaint, self.vae_factor)  # any masked pixel: repaint
            if init_latents is None or strength >= 1:
                latents = noise * scheduler.init_noise_sigma
            else:
                latents = scheduler.add_noise(init_latents, noise, timesteps[:1])

        step_takes_generator = "generator" in inspect.signature(scheduler.step).parameters
        step_kwargs = {"generator": generators} if step_takes_generator else {}
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            with torch.inference_mode():
                model_in = torch.cat([latents] * 2) if cfg else latents
                model_in = scheduler.scale_model_input(model_in, t)
                unet_in = model_in if extra is None else torch.cat([model_in, extra], dim=1)
                out = unet(unet_in.to(dtype), t, **cond.unet_kwargs(), return_dict=False)[0]
                out = out.float()
                if cfg:
                    uncond, text = out.chunk(2)
                    out = uncond + settings.guidance * (text - uncond)
                stepped = scheduler.step(out, t, latents, **step_kwargs, return_dict=True)
                x0 = _x0_of(stepped, scheduler, model_in[: job.count], out, t)
                latents = stepped.prev_sample
                if keep is not None:
                    known = init_latents
                    if i + 1 < total:
                        known = scheduler.add_noise(init_latents, noise, timesteps[i + 1 : i + 2])
                    latents = keep * known + (1 - keep) * latents
                    x0 = keep * init_latents + (1 - keep) * x0
                preview = latent_preview(x0, family)
            yield DenoiseStep(i + 1, total, preview)

        with torch.inference_mode():
            images = np.stack([self._decode(one) for one in latents.split(1)])
        if job.mask is not None:
            images = np.where(job.mask[None, :, :, None], images, job.init[None])
        return images

    def _check(self, request: DenoiseRequest) -> _Job:
        if request.count < 1 or request.steps < 1:
            raise BadInputError("count and steps must be at least 1")
        if not 0 <= request.strength <= 1:
            raise BadInputError(f"strength must be from 0 to 1 (got {request.strength})")
        init, mask = request.init, request.mask
        if mask is not None and init is None:
            raise BadInputError("a mask needs the image it applies to")
        width, height = request.width, request.height
        if init is not None:
            if init.ndim != 3 or init.shape[2] != 3 or init.dtype != np.uint8:
                raise BadInputError("the input image must be RGB uint8 (height x width x 3)")
            ih, iw = init.shape[:2]
            if (width or iw, height or ih) != (iw, ih):
                run = f"{width or iw}x{height or ih}"
                raise BadInputError(f"the input image is {iw}x{ih} but the run is {run}")
            width, height = iw, ih
        else:
            width, height = width or self.native_size[0], height or self.native_size[1]
        f = self.vae_factor
        if width % f or height % f or width < f or height < f:
            raise BadInputError(f"width and height must be multiples of {f} (got {width}x{height})")
        if mask is not None:
            if mask.shape != (height, width):
                raise BadInputError(
                    f"the mask is {mask.shape[1]}x{mask.shape[0]}, not {width}x{height}"
                )
            mask = np.asarray(mask) > 0
        return _Job(width, height, int(request.count), init, mask)

    def _inpaint_inputs(
        self, job: _Job, latent_hw: tuple[int, int], device: torch.device, cfg: bool
    ) -> torch.Tensor:
        """The 5 extra input channels of an inpainting UNet: the mask at latent size and the
        latents of the image with the masked area blanked (all repaint when there is no mask)."""
        if job.mask is None:
            repaint = torch.ones((1, 1, job.height, job.width), device=device)
        else:
            repaint = torch.from_numpy(job.mask).to(device, torch.float32)[None, None]
        if job.init is None:
            image = torch.zeros((1, 3, job.height, job.width), device=device)
        else:
            image = _to_unit(job.init, device)
        masked = self._encode(image * (1 - repaint))
        small = F.interpolate(repaint, size=latent_hw)  # nearest, as the models were trained
        extra = torch.cat([small, masked], dim=1).expand(job.count, -1, -1, -1)
        return torch.cat([extra] * 2) if cfg else extra

    def _encode(self, image: torch.Tensor) -> torch.Tensor:
        """Scaled latents (fp32) of an image [1, 3, H, W] in [-1, 1]; the distribution's mode,
        so encoding draws no random numbers."""
        vae = self.model.pipe.vae
        with _vae_for(vae, max(image.shape[-2:]) > VAE_TILING_ABOVE) as vae_dtype:
            dist = vae.encode(image.to(vae_dtype)).latent_dist
            z = dist.mode().float()
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return (z - shift) * vae.config.scaling_factor

    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        """RGB uint8 HxWx3 of one image's scaled latents [1, 4, h, w]."""
        vae = self.model.pipe.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        z = latents / vae.config.scaling_factor + shift
        large = max(z.shape[-2:]) * self.vae_factor > VAE_TILING_ABOVE
        with _vae_for(vae, large) as vae_dtype:
            x = vae.decode(z.to(vae_dtype), return_dict=False)[0]
        x = ((x[0].float() + 1) * 127.5).clamp(0, 255).round()
        return x.to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _device_dtype(module: Any) -> tuple[torch.device, torch.dtype]:
    param = next(module.parameters())
    return param.device, param.dtype


def _to_unit(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 HxWx3 -> float32 [1, 3, H, W] in [-1, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    return x.permute(2, 0, 1)[None].float() / 127.5 - 1.0


def _x0_of(
    stepped: Any, scheduler: Any, model_in: torch.Tensor, out: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The step's estimate of the clean latents, for the preview: the scheduler's own when it
    reports one, else from the model output and the (variance-preserving) model input."""
    for name in ("pred_original_sample", "denoised"):
        x0 = getattr(stepped, name, None)
        if x0 is not None:
            return x0
    alphas = scheduler.alphas_cumprod
    a = alphas[min(max(round(float(t)), 0), len(alphas) - 1)].to(out.device, torch.float32)
    kind = scheduler.config.prediction_type
    if kind == "v_prediction":
        return a.sqrt() * model_in - (1 - a).sqrt() * out
    if kind == "sample":
        return out
    return (model_in - (1 - a).sqrt() * out) / a.sqrt()


@contextlib.contextmanager
def _vae_for(vae: Any, tiled: bool) -> Iterator[torch.dtype]:
    """The VAE set up for one call and restored after it (no yield of the run happens inside):
    tiled for large images, and in fp32 when it is fp16 but known to overflow there (SDXL's)."""
    dtype = next(vae.parameters()).dtype
    upcast = dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))
    was_tiling = getattr(vae, "use_tiling", False)
    vae.use_tiling = tiled
    # nn.Module.to, not diffusers' override: that one logs a warning on every cast
    if upcast:
        torch.nn.Module.to(vae, torch.float32)
    try:
        yield torch.float32 if upcast else dtype
    finally:
        vae.use_tiling = was_tiling
        if upcast:
            torch.nn.Module.to(vae, dtype)
