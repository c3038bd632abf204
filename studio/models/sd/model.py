"""What a loaded Stable Diffusion model is: its family, its diffusers pipeline and what the file
said about itself. Shared by loading (which builds it) and the denoise backend (which runs it)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any


class SDFamily(StrEnum):
    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SDXL_REFINER = "sdxl-refiner"


class FewStep(StrEnum):
    """Distilled variants that want their own scheduler, step count and guidance."""

    NONE = "none"
    TURBO = "turbo"
    LCM = "lcm"
    LIGHTNING = "lightning"


@dataclass
class SDModel:
    """``pipe``: a diffusers ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline`` (or
    their inpaint variants when ``inpainting``: the UNet takes 9 input channels). ``prediction``
    is the scheduler's ``prediction_type`` ("epsilon" or "v_prediction")."""

    family: SDFamily
    pipe: Any
    source: Path
    inpainting: bool = False
    few_step: FewStep = FewStep.NONE
    prediction: str = "epsilon"
    licence: str = ""

    @property
    def native_size(self) -> tuple[int, int]:
        """(width, height) the family was trained at."""
        if self.family in (SDFamily.SDXL, SDFamily.SDXL_REFINER):
            return (1024, 1024)
        if self.family is SDFamily.SD2 and self.prediction == "v_prediction":
            return (768, 768)
        return (512, 512)
