"""Studio's own text-to-image model as a :class:`~studio.models.diffusion_api.DenoiseBackend`.

Prompts go through all-MiniLM-L6-v2 (:mod:`studio.models.text_encoder`), cut to the first 16
tokens as in training; the network is :mod:`studio.models.archs.text_unet`; samplers come only
from :func:`studio.models.samplers.make_scheduler` over the schedule stored in the file.

Determinism: image ``i`` starts from ``torch.Generator("cpu").manual_seed(seed + i)`` noise drawn
in float32 on the CPU, and the same generator feeds the stochastic samplers, so image ``i`` does
not depend on ``count`` and the same seed gives the same image on any device (up to the device's
arithmetic). Classifier-free guidance runs the unconditional (negative prompt) and conditional
halves as one batch of ``2 * count``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from studio.errors import BadInputError, BadWeightsError
from studio.models.archs.text_unet import NATIVE, TOKENS, TextUNet, load_text_unet
from studio.models.diffusion_api import DenoiseRequest, DenoiseStep
from studio.models.samplers import STOCHASTIC, check_sampler, make_scheduler
from studio.models.text_encoder import TextEncoding

MAX_STEPS = 1000
MAX_COUNT = 64
SIZE_MULTIPLE = 8  # the UNet folds 2x2 pixels, then halves twice


class PromptEncoder(Protocol):
    def encode(self, texts: list[str]) -> TextEncoding: ...


class TextDiffusion:
    """A loaded text-to-image model: ``denoise(request)`` yields one step per sampler step and
    returns uint8 [count, height, width, 3]. ``dtype`` bf16/fp16 runs the network under autocast
    (weights stay float32, so normalisations keep their precision)."""

    native_size = (NATIVE, NATIVE)

    def __init__(
        self,
        model: TextUNet,
        schedule: dict[str, Any],
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        encoder: PromptEncoder | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.schedule = dict(schedule)
        self.metadata = dict(metadata or {})
        self._encoder = encoder
        self._prompt_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        encoder: PromptEncoder | None = None,
        sha256: str | None = None,
    ) -> TextDiffusion:
        """Read a ``studio-text2img`` safetensors file (weights, UNet config, schedule); with
        ``sha256`` (the registry's) a damaged or replaced file is refused first."""
        if sha256 is not None:
            from studio.models.loading import sha256_of

            if sha256_of(Path(path)) != sha256:
                raise BadWeightsError(
                    f"{Path(path).name}: checksum mismatch — the file is damaged or was "
                    "replaced; restore it from the Studio download"
                )
        model, schedule, meta = load_text_unet(path, device)
        return cls(model, schedule, device, dtype, encoder, meta)

    # -- prompts ---------------------------------------------------------------------------

    @property
    def encoder(self) -> PromptEncoder:
        if self._encoder is None:
            from studio.models.text_encoder import TextEncoder

            self._encoder = TextEncoder(max_tokens=TOKENS)
        return self._encoder

    def encode(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens float32 [1,16,384], mask bool [1,16])`` on the model's device; cached."""
        if prompt not in self._prompt_cache:
            enc = self.encoder.encode([prompt])
            tokens, mask = enc.tokens[:, :TOKENS].float(), enc.mask[:, :TOKENS].bool()
            if len(self._prompt_cache) > 64:
                self._prompt_cache.clear()
            self._prompt_cache[prompt] = (tokens.to(self.device), mask.to(self.device))
        return self._prompt_cache[prompt]

    # -- sampling --------------------------------------------------------------------------

    def _check(self, request: DenoiseRequest) -> tuple[int, int]:
        check_sampler(request.sampler)
        if not 1 <= request.steps <= MAX_STEPS:
            raise BadInputError(f"steps must be 1 to {MAX_STEPS}, not {request.steps}")
        if not 1 <= request.count <= MAX_COUNT:
            raise BadInputError(f"count must be 1 to {MAX_COUNT}, not {request.count}")
        if not 0.0 <= request.strength <= 1.0:
            raise BadInputError(f"strength must be between 0 and 1, not {request.strength}")
        w = request.width or NATIVE
        h = request.height or NATIVE
        if w % SIZE_MULTIPLE or h % SIZE_MULTIPLE or not (8 <= w <= 512 and 8 <= h <= 512):
            raise BadInputError(
                f"size {w}x{h}: this model works at multiples of {SIZE_MULTIPLE} up to 512 "
                f"(native {NATIVE}x{NATIVE})"
            )
        if request.mask is not None and request.init is None:
            raise BadInputError("a mask needs an init image to repaint")
        if request.init is not None:
            init = request.init
            if init.ndim != 3 or init.shape[2] != 3 or init.dtype != np.uint8:
                raise BadInputError(f"init must be uint8 HxWx3 RGB, not {init.dtype} {init.shape}")
        return w, h

    def _call(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: tuple[torch.Tensor, torch.Tensor],
        guidance: float,
    ) -> torch.Tensor:
        """The guided prediction for the model-space input ``x`` [count, 3, H, W]."""
        tokens, mask = context
        n = x.shape[0]
        guided = guidance > 1.0
        batch = torch.cat([x, x]) if guided else x
        batch = batch.contiguous(memory_format=torch.channels_last)
        ts = t.reshape(1).expand(batch.shape[0]).to(self.device)
        low = self.dtype in (torch.bfloat16, torch.float16)
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=self.dtype, enabled=low),
        ):
            out = self.model(batch, ts, tokens, encoder_attention_mask=mask).float()
        if not guided:
            return out
        uncond, cond = out[:n], out[n:]
        return uncond + guidance * (cond - uncond)

    def _x0(
        self, sched: Any, x_in: torch.Tensor, out: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """The clean image the prediction ``out`` implies for the DDPM-space input ``x_in``."""
        a = sched.alphas_cumprod[int(t)].to(x_in.device, torch.float32)
        if self.schedule.get("prediction_type") == "v_prediction":
            return a.sqrt() * x_in - (1 - a).sqrt() * out
        return (x_in - (1 - a).sqrt() * out) / a.sqrt().clamp_min(1e-4)

    def denoise(self, request: DenoiseRequest) -> Generator[DenoiseStep, None, np.ndarray]:
        """Run ``request``: one :class:`DenoiseStep` per sampler step, then the images."""
        w, h = self._check(request)
        n = request.count
        init = None if request.init is None else _resize_rgb(request.init, w, h)
        if init is not None and (request.strength <= 0.0):
            return np.repeat(init[None], n, axis=0)
        gens = [torch.Generator("cpu").manual_seed(request.seed + i) for i in range(n)]
        noise = torch.cat(
            [torch.randn((1, 3, h, w), generator=g, dtype=torch.float32) for g in gens]
        ).to(self.device)
        guided = request.guidance > 1.0
        cond = self.encode(request.prompt)
        if guided:
            unc = self.encode(request.negative)
            tokens = torch.cat([unc[0].expand(n, -1, -1), cond[0].expand(n, -1, -1)])
            mask = torch.cat([unc[1].expand(n, -1), cond[1].expand(n, -1)])
        else:
            tokens, mask = cond[0].expand(n, -1, -1), cond[1].expand(n, -1)
        context = (tokens.contiguous(), mask.contiguous())

        sched = make_scheduler(request.sampler, self.schedule)
        sched.set_timesteps(request.steps, device=self.device)
        timesteps = sched.timesteps
        if len(torch.unique(timesteps)) < len(timesteps):
            # Karras sigmas under a zero-terminal-SNR schedule pile up at the last timestep
            raise BadInputError(
                f"sampler '{request.sampler}' does not suit this model's noise schedule "
                "(repeated timesteps); use dpm++, euler or unipc"
            )
        x0_known = keep = None
        if init is None:
            latents = noise * sched.init_noise_sigma
        else:
            x0_known = _to_model(init, self.device).expand(n, -1, -1, -1)
            start = request.steps - min(request.steps, round(request.steps * request.strength))
            start *= sched.order
            timesteps = timesteps[start:]
            if len(timesteps) == 0:
                return np.repeat(init[None], n, axis=0)
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(start)
            latents = sched.add_noise(x0_known, noise, timesteps[:1])
            if request.mask is not None:
                keep = 1.0 - _resize_mask(request.mask, w, h, self.device)
        step_kwargs = {"generator": gens} if request.sampler in STOCHASTIC else {}
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            x_in = sched.scale_model_input(latents, t)
            out = self._call(x_in, t, context, request.guidance)
            x0 = self._x0(sched, x_in, out, t).clamp(-1, 1)
            latents = sched.step(out, t, latents, **step_kwargs).prev_sample
            if keep is not None and x0_known is not None:
                if i + 1 < total:
                    known = sched.add_noise(x0_known, noise, timesteps[i + 1 : i + 2])
                else:
                    known = x0_known
                latents = keep * known + (1.0 - keep) * latents
                x0 = keep * x0_known + (1.0 - keep) * x0
            yield DenoiseStep(i + 1, total, _to_uint8(x0))
        images = _to_uint8(latents.clamp(-1, 1))
        if keep is not None and init is not None:
            images = _composite(images, init, keep)
        return images


def _resize_rgb(image: np.ndarray, w: int, h: int) -> np.ndarray:
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.LANCZOS))


def _resize_mask(mask: np.ndarray, w: int, h: int, device: torch.device) -> torch.Tensor:
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim != 2:
        raise BadInputError(f"mask must be HxW, not {m.shape}")
    if m.shape != (h, w):
        m = np.asarray(Image.fromarray(m, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    return torch.from_numpy(np.clip(m, 0.0, 1.0)).to(device)[None, None]


def _to_model(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 HxWx3 -> float32 [1,3,H,W] in [-1, 1]."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return (x / 127.5 - 1.0).to(device)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """float [N,3,H,W] in [-1, 1] -> uint8 [N,H,W,3]."""
    y = ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()


def _composite(images: np.ndarray, init: np.ndarray, keep: torch.Tensor) -> np.ndarray:
    """Pixels with ``keep`` 1 exactly from ``init``; blended where 0 < keep < 1."""
    k = keep[0, 0].cpu().numpy()[None, :, :, None]
    out = k * init[None].astype(np.float32) + (1.0 - k) * images.astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
