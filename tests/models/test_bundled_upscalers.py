"""Every bundled upscaler: loads from checkpoints/, and tiled output equals untiled within 1/255.

For each model, the engine's context pad is used to run one interior and one corner tile from
their contexts alone; their cores must match the untiled output (what crop-mode tiling keeps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.engine.tasks.upscale import context_pad
from studio.engine.tiling import plan_tiles
from studio.models.descriptor import ImageModel
from studio.models.loading import load_weights
from studio.models.registry import all_models
from studio.paths import checkpoints_dir

NEURAL = [m for m in all_models("upscale") if m.arch != "classical"]
CORE = 16
IMAGES = Path(__file__).resolve().parents[1] / "images"


@pytest.mark.slow
@pytest.mark.parametrize("spec", NEURAL, ids=lambda s: s.id)
def test_tiled_equals_untiled_within_one_level(spec) -> None:
    loaded = load_weights(checkpoints_dir() / spec.files[0].name, spec.files[0].sha256)
    model = ImageModel(loaded, torch.device("cpu"))
    pad = context_pad(loaded.receptive_field)
    size = CORE + 2 * pad + 16  # the middle tile's context stops 8 px short of every edge
    photo = np.asarray(Image.open(IMAGES / "astronaut_crop.png"))
    image = photo[60 : 60 + size, 40 : 40 + size].astype(np.float32) / 255
    whole = model(image)
    s = loaded.scale
    tiles = plan_tiles(size, size, CORE, pad)
    middle = min(tiles, key=lambda t: abs(t.core.x - size // 2) + abs(t.core.y - size // 2))
    assert middle.context.w < size and middle.context.h < size
    for tile in (tiles[0], middle):
        out = model(np.ascontiguousarray(image[tile.context.slices]))
        core = tile.core.translate(-tile.context.x, -tile.context.y).scale(s)
        diff = np.abs(out[core.slices] - whole[tile.core.scale(s).slices]) * 255
        assert diff.max() <= 1.0, f"{spec.id}: tile {tile.core} differs by {diff.max():.2f}/255"
