"""diffusers and transformers kept off the terminal while Studio runs their models.

They draw their own progress bars ("Loading pipeline components...", "Loading weights") and
log warnings meant for library users (a cast's "modules that should be kept in float32" line,
scheduler config keys they ignore) on stderr, where they would break Studio's one progress bar
and its one-line errors. Studio reports loading and every step itself, so both libraries are
set to errors only, without bars, by the code that loads their models (not through environment
variables, which nothing below the edge reads).
"""

from __future__ import annotations

from typing import Any


def quiet_hub_libraries() -> None:
    """diffusers' and transformers' loggers to errors only and their progress bars off (for
    the process: Studio shows its own). Cheap; called before each load."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        library.disable_progress_bar()


def quiet_pipeline(pipe: Any) -> Any:
    """``pipe`` with its own denoising progress bar off (if anything calls it), returned."""
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe
