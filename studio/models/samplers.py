"""The samplers an artist picks by name, built from the maintained schedulers of ``diffusers``.

Every denoising model in Studio (its own text-to-image model, an artist's Stable Diffusion
file) builds its scheduler here from the training schedule's config, so the names, their
order in menus and their settings are declared once. No sampler is written by hand.
"""

from __future__ import annotations

from typing import Any

from studio.errors import BadInputError

#: name -> (diffusers class name, extra config); the first is the default
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpm++-karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
    ),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {"set_alpha_to_one": False}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
DEFAULT_SAMPLER = next(iter(SAMPLERS))
#: samplers that draw fresh noise each step (they need the run's generator)
STOCHASTIC = frozenset({"euler-a", "lcm"})


def sampler_names() -> list[str]:
    """Every sampler's name, default first."""
    return list(SAMPLERS)


def check_sampler(name: str) -> str:
    """``name`` if known; :class:`BadInputError` naming the known ones otherwise."""
    if name not in SAMPLERS:
        raise BadInputError(f"unknown sampler '{name}' (use {', '.join(SAMPLERS)})")
    return name


def make_scheduler(name: str, schedule: dict[str, Any]) -> Any:
    """A fresh diffusers scheduler ``name`` over the training ``schedule`` (the keys of a
    scheduler config: ``num_train_timesteps``, ``beta_schedule``, ``prediction_type``, ...).

    Keys the chosen class does not take are dropped by diffusers' ``from_config``; private keys
    (``_use_default_values`` of a pipeline's config) are dropped here, because diffusers would put
    those defaults back over the sampler's own settings (karras sigmas, prediction type).
    """
    import diffusers

    class_name, extra = SAMPLERS[check_sampler(name)]
    cls = getattr(diffusers, class_name)
    public = {k: v for k, v in schedule.items() if not k.startswith("_")}
    return cls.from_config({**public, **extra})
