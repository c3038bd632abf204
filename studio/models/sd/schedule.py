"""The sampler, step count and guidance a Stable Diffusion run uses, and its timesteps.

Few-step models (Turbo, LCM, Lightning) were distilled for one scheduler, a handful of steps and
little or no guidance; a request that leaves those fields at their defaults gets what the model
was made for, while an explicit choice is respected. v-prediction models carry their
``prediction_type`` into every scheduler built here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch

from studio.models.diffusion_api import DenoiseRequest
from studio.models.samplers import check_sampler, make_scheduler
from studio.models.sd.model import FewStep, SDModel

_DEFAULTS = {f.name: f.default for f in fields(DenoiseRequest)}
#: the most steps a few-step img2img schedule is stretched to (see :func:`choose_settings`)
MAX_STRETCHED_STEPS = 50


@dataclass(frozen=True)
class FewStepRecipe:
    sampler: str
    steps: int
    guidance: float
    #: scheduler config overrides the distillation assumed (whatever sampler is picked)
    schedule: tuple[tuple[str, Any], ...] = ()


_TRAILING = (("timestep_spacing", "trailing"),)
RECIPES: dict[FewStep, FewStepRecipe] = {
    FewStep.TURBO: FewStepRecipe("euler-a", 1, 0.0, _TRAILING),
    # LCM-LoRA style checkpoints: guidance 1-2 is their range; 1 switches CFG off (half the cost)
    FewStep.LCM: FewStepRecipe("lcm", 4, 1.0),
    FewStep.LIGHTNING: FewStepRecipe("euler", 4, 0.0, _TRAILING),
}
#: an LCM UNet with a guidance embedding (``time_cond_proj_dim``) was distilled at w = 8
LCM_EMBEDDED_GUIDANCE = 8.0


@dataclass(frozen=True)
class RunSettings:
    sampler: str
    steps: int
    guidance: float
    #: the scheduler config: the model's training schedule plus the recipe's overrides
    schedule: dict[str, Any]


def choose_settings(
    model: SDModel, request: DenoiseRequest, guidance_embedded: bool = False
) -> RunSettings:
    """Sampler, steps and guidance for ``request`` on ``model`` (few-step defaults applied).

    ``guidance_embedded``: the UNet takes guidance as an input (LCM distilled with w), so the
    default guidance is the distillation's. For a few-step img2img left at the default steps,
    the schedule is stretched so that ``strength`` of it still runs the recipe's step count.
    """
    # private keys dropped: diffusers' ``_use_default_values`` would make ``from_config`` put
    # back the defaults of every key it lists, over the values set here
    schedule = {k: v for k, v in model.pipe.scheduler.config.items() if not k.startswith("_")}
    schedule["prediction_type"] = model.prediction
    sampler, steps, guidance = request.sampler, request.steps, request.guidance
    recipe = RECIPES.get(model.few_step)
    if recipe is not None:
        schedule.update(recipe.schedule)
        if sampler == _DEFAULTS["sampler"]:
            sampler = recipe.sampler
        if guidance == _DEFAULTS["guidance"]:
            guidance = LCM_EMBEDDED_GUIDANCE if guidance_embedded else recipe.guidance
        if steps == _DEFAULTS["steps"]:
            steps = recipe.steps
            if request.init is not None and 0 < request.strength < 1:
                steps = min(MAX_STRETCHED_STEPS, math.ceil(steps / request.strength))
    return RunSettings(check_sampler(sampler), steps, float(guidance), schedule)


def build_scheduler(settings: RunSettings) -> Any:
    """A fresh scheduler for one run (never the pipeline's own: runs share no state)."""
    return make_scheduler(settings.sampler, settings.schedule)


def run_timesteps(
    scheduler: Any, steps: int, strength: float, device: torch.device
) -> torch.Tensor:
    """The timesteps a run walks: all ``steps`` of them, or for img2img (``strength`` < 1) the
    last ``strength`` of the schedule, at least one step (diffusers' ``get_timesteps``)."""
    scheduler.set_timesteps(steps, device=device)
    start = 0
    if strength < 1:
        run = max(1, min(int(steps * strength), steps))
        start = (steps - run) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return scheduler.timesteps[start:]
