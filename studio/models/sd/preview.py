"""A cheap picture of Stable Diffusion latents for the per-step preview: a linear map from the
4 latent channels to RGB plus a bias, no decoder call.

The factors are the published least-squares fits of each VAE's decoded colours to its latents
(Keturn's approximation, as ComfyUI's ``latent_formats.py`` lists them): SD 1.x and 2.x share
one VAE, SDXL and its refiner another. They apply to latents in the UNet's scaled space (the
values the sampler works on), and give RGB in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from studio.models.sd.model import SDFamily

_SD1_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
_SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
_SDXL_BIAS = (0.1084, -0.0175, -0.0011)

#: family -> (4x3 factors, RGB bias)
LATENT_RGB: dict[SDFamily, tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]] = {
    SDFamily.SD1: (_SD1_FACTORS, (0.0, 0.0, 0.0)),
    SDFamily.SD2: (_SD1_FACTORS, (0.0, 0.0, 0.0)),
    SDFamily.SDXL: (_SDXL_FACTORS, _SDXL_BIAS),
    SDFamily.SDXL_REFINER: (_SDXL_FACTORS, _SDXL_BIAS),
}


def latent_preview(latents: torch.Tensor, family: SDFamily) -> np.ndarray:
    """RGB uint8 [count, h, w, 3] from scaled latents [count, 4, h, w] (any dtype or device).

    A latent with other than 4 channels (a VAE Studio has no factors for) shows as grey levels
    of its channel mean, so a preview is never an error.
    """
    x = latents.detach().to("cpu", torch.float32)
    if x.shape[1] == 4:
        factors, bias = LATENT_RGB[family]
        rgb = torch.einsum("nchw,cr->nhwr", x, torch.tensor(factors)) + torch.tensor(bias)
    else:
        rgb = x.mean(dim=1).unsqueeze(-1).expand(-1, -1, -1, 3)
    return ((rgb + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8).numpy()
