"""The generator of Studio's 64x64 GAN (the discriminator lives in the training code).

A linear layer to ``C0 x 4 x 4``, then per block nearest x2 upsampling, a 3x3 convolution, batch
norm and ReLU, and a 3x3 convolution to RGB with a sigmoid: the SNGAN/DCGAN generator. Batch
norm runs in eval mode at inference (its statistics are recomputed for the averaged weights
before export), which makes it a fixed affine map: an image never depends on its batch, and
scaling the latent (the truncation trick) really does move samples towards the typical ones.
A per-sample normalisation such as pixel norm would not: it cancels any scaling of the latent.

Tensor contract: ``forward`` takes latents (N, Z) float32 (standard normal at training time) and
returns float32 RGB NCHW in [0, 1]. State-dict keys: ``generator.fc.weight`` (C0*16 x Z),
``generator.norm0.*``, ``generator.blocks.{i}.conv.weight``, ``generator.blocks.{i}.norm.*``,
``generator.to_rgb.weight``.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from studio.models.arch import LoadedModel, StateDict, count_prefixed, has_keys

BASE = 4


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        return torch.relu(self.norm(self.conv(x)))


class GeneratorNet(nn.Module):
    def __init__(self, z_dim: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.c0 = channels[0]
        self.fc = nn.Linear(z_dim, channels[0] * BASE * BASE)
        self.norm0 = nn.BatchNorm2d(channels[0])
        self.blocks = nn.ModuleList(
            UpBlock(cin, cout) for cin, cout in itertools.pairwise(channels)
        )
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm0(self.fc(z).view(-1, self.c0, BASE, BASE)))
        for block in self.blocks:
            x = block(x)
        return torch.sigmoid(self.to_rgb(x))


class Generator(nn.Module):
    """(N, Z) -> (N, 3, S, S) in [0, 1] with S = 4 * 2^(len(channels) - 1)."""

    def __init__(self, z_dim: int = 128, channels: tuple[int, ...] = (256, 128, 64, 32, 16)):
        super().__init__()
        self.z_dim = z_dim
        self.generator = GeneratorNet(z_dim, channels)

    @property
    def image_size(self) -> int:
        return BASE * 2 ** len(self.generator.blocks)

    def from_noise(self, eps: torch.Tensor) -> torch.Tensor:
        """The generator's latents are the standard-normal noise itself."""
        return eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Same as ``forward``: lets sampling code treat VAE decoders and generators alike."""
        return self.generator(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)


class GANArch:
    """Registry entry for :class:`Generator`."""

    id = "conv-gan"
    name = "GAN generator (64x64)"
    license = "MIT"

    def detect(self, state_dict: StateDict) -> bool:
        keys = ("generator.fc.weight", "generator.norm0.running_mean", "generator.to_rgb.weight")
        if not has_keys(state_dict, *keys):
            return False
        return all(k.startswith("generator.") for k in state_dict)

    def load(self, state_dict: StateDict) -> LoadedModel:
        z_dim = int(state_dict["generator.fc.weight"].shape[1])
        n = count_prefixed(state_dict, "generator.blocks.", ".conv.weight")
        channels = [int(state_dict["generator.norm0.weight"].shape[0])]
        channels += [
            int(state_dict[f"generator.blocks.{i}.conv.weight"].shape[0]) for i in range(n)
        ]
        module = Generator(z_dim, tuple(channels))
        module.load_state_dict(dict(state_dict), strict=True)
        return LoadedModel(
            module=module.eval(),
            arch_id=self.id,
            in_channels=0,
            supports_half=False,
            receptive_field=module.image_size,
            extra={
                "kind": "gan",
                "z_dim": z_dim,
                "size": module.image_size,
                "purpose": "Generation",
            },
        )
