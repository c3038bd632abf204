"""Describe: the captions that fit the picture (or the selection) best, by the miniature CLIP.

The result's ``info["captions"]`` is a list of ``(caption, score)`` pairs, best first (score:
cosine similarity); its image is the input region, untouched, and landing it changes nothing:
the artist picks a caption (for instance as a prompt), not pixels.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from studio.document.document import Document
from studio.document.landing import Landing
from studio.engine.events import Progress, Result, TaskEvent
from studio.engine.jobs import JobRequest, check_range
from studio.engine.task_table import CliJob, CliReader, TaskCli, TaskDef
from studio.engine.tasks.context import TaskContext
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models.arch import LoadedModel
from studio.models.archs.mini_clip import MiniClip
from studio.models.describe import MAX_TOP_K, describe
from studio.models.registry import get_model
from studio.task_kind import TaskKind

DEFAULT_MODEL = "studio-mini-clip"


@dataclass(frozen=True)
class DescribeParams:
    """``model``: a registry id (task "describe") or a path to a mini-CLIP weight file;
    ``top_k``: how many captions to return."""

    model: str = DEFAULT_MODEL
    top_k: int = 5

    task: ClassVar[TaskKind] = TaskKind.DESCRIBE

    def __post_init__(self) -> None:
        check_range("top", self.top_k, 1, MAX_TOP_K)


def _clip_module(loaded: LoadedModel, device: torch.device, *_: object) -> MiniClip:
    if not isinstance(loaded.module, MiniClip):
        raise BadInputError(f"a {loaded.arch_id} model cannot describe pictures")
    return loaded.module.to(device).eval()


def load_clip(model: str, ctx: TaskContext) -> Generator[TaskEvent, None, MiniClip]:
    """The mini-CLIP on the task's device, from the model cache (loaded on a miss)."""
    candidate = Path(model).expanduser()
    if candidate.suffix and candidate.is_file():
        return (yield from ctx.load_user_model(candidate, _clip_module))
    spec = get_model(model, TaskKind.DESCRIBE)

    def build(loaded: LoadedModel) -> MiniClip:
        return _clip_module(loaded, ctx.device)

    return (yield from ctx.load_registered(spec, build, TaskKind.DESCRIBE))


def run_describe(request: JobRequest, ctx: TaskContext) -> Generator[TaskEvent, None, Result]:
    params: DescribeParams = request.params
    model = yield from load_clip(params.model, ctx)
    image = request.image
    h, w = image.shape[:2]
    rect = Rect(0, 0, w, h)
    if request.roi is not None and not request.roi.is_empty():
        rect = request.roi
        image = image[rect.y : rect.bottom, rect.x : rect.right]
    started = time.perf_counter()
    yield Progress(0, 1, "describing")
    ctx.cancel.check()
    captions = describe(model, image, params.top_k)
    yield Progress(1, 1, "describing", time.perf_counter() - started)
    return Result(image, rect, {"model": params.model, "captions": captions})


def land_nothing(doc: Document, result: Landing) -> None:
    """A description changes no pixels."""


# -- the task's row ------------------------------------------------------------------------------
def _cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="the picture to describe")
    parser.add_argument("--top", type=int, default=5, help="how many captions to print")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="describe model id or file")


def _cli_job(ns: argparse.Namespace, read: CliReader) -> CliJob:
    return CliJob(DescribeParams(model=ns.model, top_k=ns.top), image=ns.image)


def _print_captions(info: dict) -> None:
    for caption, score in info["captions"]:
        print(f"{score:.3f}  {caption}", file=sys.stdout)


DESCRIBE_TASK = TaskDef(
    kind=TaskKind.DESCRIBE,
    title="Describe",
    params=DescribeParams,
    run=run_describe,
    models=TaskKind.DESCRIBE,
    land=land_nothing,
    cli=TaskCli(
        "print the captions that fit an image best",
        _cli_arguments,
        _cli_job,
        report=_print_captions,
    ),
)
