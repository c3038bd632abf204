"""A small convolutional VAE for 64x64 images.

Encoder: ``len(enc)`` stride-2 3x3 convolutions (LeakyReLU) down to 4x4, flattened, one linear
layer to (mu, logvar). Decoder: a linear layer to ``C0 x 4 x 4``, then per block nearest x2
upsampling, a 3x3 convolution, LeakyReLU and pixel norm, and a 3x3 convolution to RGB with a
sigmoid. No batch statistics anywhere, so an image never depends on what else is in its batch.
Pixel norm makes the decoder nearly blind to the *scale* of a latent (only its direction and the
layer biases matter), so sampling "temperature" works through the fitted prior's offset
``prior_loc`` and is weak; see :meth:`ConvVAE.from_noise`.

Tensor contract: ``encode`` takes float32 RGB NCHW in [0, 1] (64x64) and returns (mu, logvar),
each (N, Z); ``decode`` takes (N, Z) latents and returns float32 RGB NCHW in [0, 1];
``from_noise`` maps standard-normal noise (N, Z) to latents of the sampling prior.
State-dict keys: ``encoder.convs.{i}.weight``, ``encoder.stats.weight`` (2Z x C*16),
``decoder.fc.weight`` (C0*16 x Z), ``decoder.blocks.{i}.weight``, ``decoder.to_rgb.weight``,
optionally ``prior_loc`` (Z) and ``prior_scale_tril`` (Z x Z, lower triangular).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from studio.models.arch import LoadedModel, StateDict, count_prefixed, has_keys

BASE = 4  # spatial side of the first decoder feature map and the last encoder one
PRIOR_KEYS = ("prior_loc", "prior_scale_tril")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit RMS (per sample: batch-independent)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class Decoder(nn.Module):
    """(N, Z) latent -> (N, 3, BASE*2^k, BASE*2^k) image in [0, 1]; ``channels`` has k+1 items."""

    def __init__(self, z_dim: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c0 = channels[0]
        self.fc = nn.Linear(z_dim, channels[0] * BASE * BASE)
        self.blocks = nn.ModuleList(
            nn.Conv2d(cin, cout, 3, 1, 1) for cin, cout in itertools.pairwise(channels)
        )
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(self.act(self.fc(z).view(-1, self.c0, BASE, BASE)))
        for conv in self.blocks:
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            x = pixel_norm(self.act(conv(x)))
        return torch.sigmoid(self.to_rgb(x))


class Encoder(nn.Module):
    """(N, 3, S, S) in [0, 1] -> (mu, logvar), each (N, Z)."""

    def __init__(self, z_dim: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        chans = (3, *channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, 3, 2, 1) for cin, cout in itertools.pairwise(chans)
        )
        self.stats = nn.Linear(channels[-1] * BASE * BASE, 2 * z_dim)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x * 2.0 - 1.0
        for conv in self.convs:
            x = self.act(conv(x))
        mu, logvar = self.stats(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar


class ConvVAE(nn.Module):
    """Encoder + decoder; ``forward`` reconstructs from the posterior mean (deterministic)."""

    def __init__(
        self,
        z_dim: int = 128,
        enc_channels: tuple[int, ...] = (32, 64, 128, 128),
        dec_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.encoder = Encoder(z_dim, enc_channels)
        self.decoder = Decoder(z_dim, dec_channels)
        # the sampling prior z = loc + L eps: N(0, I) by default, or a Gaussian fitted to the
        # training set's posterior means after training (samples then land where the decoder
        # was trained, not in the holes a KL-regularised latent space leaves around it)
        self.register_buffer("prior_loc", torch.zeros(z_dim))
        self.register_buffer("prior_scale_tril", torch.eye(z_dim))

    @property
    def image_size(self) -> int:
        return BASE * 2 ** len(self.decoder.blocks)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def from_noise(self, eps: torch.Tensor) -> torch.Tensor:
        """Standard-normal noise (N, Z) -> latents of the sampling prior."""
        return self.prior_loc + eps @ self.prior_scale_tril.T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def decoder_channels(state_dict: StateDict, prefix: str) -> tuple[int, ...]:
    """The decoder's channel list, read from the conv weight shapes under ``prefix``."""
    n = count_prefixed(state_dict, f"{prefix}blocks.", ".weight")
    chans = [int(state_dict[f"{prefix}fc.weight"].shape[0]) // (BASE * BASE)]
    chans += [int(state_dict[f"{prefix}blocks.{i}.weight"].shape[0]) for i in range(n)]
    return tuple(chans)


class VAEArch:
    """Registry entry for :class:`ConvVAE`."""

    id = "conv-vae"
    name = "Convolutional VAE (64x64)"
    license = "MIT"

    def detect(self, state_dict: StateDict) -> bool:
        keys = ("encoder.convs.0.weight", "encoder.stats.weight", "decoder.fc.weight")
        return has_keys(state_dict, *keys, "decoder.to_rgb.weight")

    def load(self, state_dict: StateDict) -> LoadedModel:
        z_dim = int(state_dict["decoder.fc.weight"].shape[1])
        n_enc = count_prefixed(state_dict, "encoder.convs.", ".weight")
        enc = tuple(int(state_dict[f"encoder.convs.{i}.weight"].shape[0]) for i in range(n_enc))
        if int(state_dict["encoder.stats.weight"].shape[0]) != 2 * z_dim:
            raise ValueError("encoder and decoder latent sizes differ")
        module = ConvVAE(z_dim, enc, decoder_channels(state_dict, "decoder."))
        state = dict(state_dict)
        for key in PRIOR_KEYS:  # weights saved before the fitted prior existed: N(0, I)
            state.setdefault(key, module.state_dict()[key])
        module.load_state_dict(state, strict=True)
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            in_channels=3,
            supports_half=False,
            receptive_field=module.image_size,
            extra={
                "kind": "vae",
                "z_dim": z_dim,
                "size": module.image_size,
                "purpose": "Generation",
            },
        )
