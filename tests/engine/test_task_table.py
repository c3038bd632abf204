"""The task table is the one place a task is declared: nothing else spells a task's name, and a
task registered in a test runs from the command line and lands in a document, with no other
edit anywhere."""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

import studio
from studio.cli import main
from studio.document import Document, Layer
from studio.document.landing import Landing
from studio.engine.events import Progress, Result
from studio.engine.jobs import JobRequest
from studio.engine.messages import JobFinished
from studio.engine.runner import JobRunner
from studio.engine.task_table import (
    CliJob,
    TaskCli,
    TaskDef,
    all_tasks,
    find,
    get,
    register,
    unregister,
)
from studio.geometry import Rect
from studio.task_kind import TaskKind

STUDIO = Path(studio.__file__).parent

#: string constants equal to a task's name that are something else; keep this tiny
ALLOWED = {
    # the default name of a training run (its checkpoint file), not the task
    ("training/train_inpaint.py", "inpaint"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_no_module_spells_a_task_name_but_the_task_kind() -> None:
    names = {kind.value for kind in TaskKind}
    spelled = []
    for path in sorted(STUDIO.rglob("*.py")):
        relative = path.relative_to(STUDIO).as_posix()
        if relative == "task_kind.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in names
                and id(node) not in docstrings
                and (relative, node.value) not in ALLOWED
            ):
                spelled.append(f"studio/{relative}:{node.lineno}: {node.value!r}")
    assert not spelled, "use TaskKind (or the task table) instead of:\n" + "\n".join(spelled)


def test_the_guard_sees_a_spelled_name() -> None:
    """The walk above finds a bare name in code (and not one in a docstring)."""
    tree = ast.parse('"""upscale"""\ndef f(t):\n    """inpaint"""\n    return t == "upscale"\n')
    docstrings = _docstrings(tree)
    hits = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value == "upscale" and id(n) not in docstrings
    ]
    assert hits == ["upscale"]


def test_every_kind_has_one_row_whose_params_name_it() -> None:
    rows = all_tasks()
    assert [row.kind for row in rows][: len(TaskKind)] == list(TaskKind)
    for row in rows:
        assert row.params.task == row.kind
        assert callable(row.run) and callable(row.land) and row.cli is not None
    assert get(TaskKind.OUTPAINT).grows_canvas and get(TaskKind.UPSCALE).replaces_document
    assert get(TaskKind.GENERATE).natural_size
    assert {spec.task for spec in get(TaskKind.OUTPAINT).model_specs()} == {TaskKind.INPAINT}
    assert find("no-such-task") is None
    with pytest.raises(KeyError, match="unknown task 'no-such-task'"):
        get("no-such-task")


# -- a task of the test's own: params, generator, landing, command line ------------------------
class InvertKind(StrEnum):
    INVERT = "invert"


@dataclass(frozen=True)
class InvertParams:
    """Invert the colours, ``amount`` of the way."""

    amount: float = 1.0

    task: ClassVar[InvertKind] = InvertKind.INVERT


def run_invert(request: JobRequest, ctx):
    yield Progress(0, 1, "inverting")
    p: InvertParams = request.params
    rgb = request.image[:, :, :3].astype(np.float32)
    out = np.rint(rgb + p.amount * (255 - 2 * rgb)).astype(np.uint8)
    yield Progress(1, 1, "inverting")
    h, w = out.shape[:2]
    return Result(out, Rect(0, 0, w, h), {"amount": p.amount})


def land_inverted(doc: Document, result: Landing) -> None:
    """A layer of its own called "Inverted", one undo step."""
    layer = Layer.from_rgb(result.image, "Inverted")
    doc.add_layer(layer, name=f"{result.title} ×{result.info['amount']:g}")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--amount", type=float, default=1.0)


def _job(ns: argparse.Namespace, read) -> CliJob:
    return CliJob(InvertParams(ns.amount), image=ns.input)


INVERT = TaskDef(
    kind=InvertKind.INVERT,
    title="Invert",
    params=InvertParams,
    run=run_invert,
    land=land_inverted,
    cli=TaskCli("invert the colours", _arguments, _job),
)


@pytest.fixture
def invert_task():
    register(INVERT)
    yield INVERT
    unregister(InvertKind.INVERT)


def test_a_registered_task_runs_from_the_command_line(invert_task, tmp_path, capsys) -> None:
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (12, 16, 3), np.uint8)
    Image.fromarray(photo).save(tmp_path / "in.png")
    assert main(["invert", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--quiet"]) == 0
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    np.testing.assert_array_equal(out, 255 - photo, "every pixel inverted, exactly")
    capsys.readouterr()
    assert main(["invert", str(tmp_path / "missing.png"), str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("studio: error: "), err
    assert not (tmp_path / "o.png").exists()


def test_a_registered_task_lands_in_a_document(invert_task) -> None:
    rng = np.random.default_rng(4)
    doc = Document.from_image(rng.integers(0, 256, (10, 14, 3), np.uint8), "photo")
    request = JobRequest(InvertParams(0.5), doc.composite())
    messages = list(JobRunner().run(request))
    finished = messages[-1]
    assert isinstance(finished, JobFinished), messages[-1]
    task = get(request.task)
    task.land(doc, Landing(finished.image, request.image, task.title, info=dict(finished.info)))
    assert [layer.name for layer in doc.layers] == ["photo", "Inverted"]
    assert doc.layers[1].pixels[:, :, :3].tolist() == finished.image.tolist()
    doc.undo()
    assert [layer.name for layer in doc.layers] == ["photo"], "one undo step"
