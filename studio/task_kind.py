"""The kinds of task Studio runs: the one place their names are spelled.

A ``StrEnum``, so a kind compares equal to its name (``TaskKind.UPSCALE == "upscale"``) where
it meets the outside world: CLI subcommands, provenance labels, OpenRaster stacks. Model specs
use it for their family (the kind of task their models serve). Qt-free, no dependencies.
"""

from __future__ import annotations

from enum import StrEnum


class TaskKind(StrEnum):
    UPSCALE = "upscale"
    INPAINT = "inpaint"
    OUTPAINT = "outpaint"
    STYLIZE = "stylize"
    GENERATE = "generate"
    DESCRIBE = "describe"
