"""The describe task through the plain-Python runner and the command line: captions come back
in the result's info, best first; the picture is untouched and landing changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from studio.cli import main
from studio.document import Document
from studio.document.landing import Landing
from studio.engine.jobs import JobRequest
from studio.engine.messages import JobFailed, JobFinished
from studio.engine.runner import JobRunner
from studio.engine.task_table import get
from studio.engine.tasks.describe import DescribeParams
from studio.errors import BadInputError
from studio.geometry import Rect
from studio.models.archs.mini_clip import MiniClip
from studio.models.describe import prepare
from studio.task_kind import TaskKind

CAPTIONS = [f"caption {i}" for i in range(12)]
PICTURE = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)


@pytest.fixture
def clip_file(tmp_path: Path) -> str:
    """A tiny random mini-CLIP whose caption 7 is exactly the vector of ``PICTURE``."""
    torch.manual_seed(0)
    model = MiniClip((4, 8, 8, 8), dim=16).eval()
    bank = F.normalize(torch.randn(len(CAPTIONS), 16), dim=1)
    with torch.no_grad():
        bank[7] = model.encode_image(prepare(PICTURE))[0]
    model.attach_bank(CAPTIONS, bank)
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()} | model.bank_state(), path)
    return str(path)


def run(params: DescribeParams, image: np.ndarray = PICTURE, roi: Rect | None = None):
    messages = list(JobRunner(device=torch.device("cpu")).run(JobRequest(params, image, roi=roi)))
    return messages[-1]


def test_captions_best_first_and_the_picture_untouched(clip_file) -> None:
    finished = run(DescribeParams(model=clip_file, top_k=4))
    assert isinstance(finished, JobFinished), finished
    captions = finished.info["captions"]
    assert len(captions) == 4 and captions[0][0] == "caption 7"
    assert captions[0][1] == pytest.approx(1.0, abs=1e-3)  # the bank is stored in fp16
    assert [s for _, s in captions] == sorted((s for _, s in captions), reverse=True)
    assert np.array_equal(finished.image, PICTURE)


def test_a_selection_is_described_alone(clip_file) -> None:
    big = np.full((60, 80, 3), 255, np.uint8)
    big[10:34, 20:52] = PICTURE
    finished = run(DescribeParams(model=clip_file, top_k=1), big, Rect(20, 10, 32, 24))
    assert finished.info["captions"][0][0] == "caption 7"
    assert np.array_equal(finished.image, PICTURE)


def test_landing_a_description_changes_nothing(clip_file) -> None:
    doc = Document.from_image(PICTURE, "photo")
    finished = run(DescribeParams(model=clip_file))
    task = get(TaskKind.DESCRIBE)
    task.land(doc, Landing(finished.image, PICTURE, task.title, info=dict(finished.info)))
    assert [layer.name for layer in doc.layers] == ["photo"]
    assert doc.undo() is None, "no undo step"


def test_unknown_model_and_bad_top_are_one_clear_error(clip_file) -> None:
    failed = run(DescribeParams(model="no-such-model"))
    assert isinstance(failed, JobFailed) and failed.kind == "missing_model"
    assert "no-such-model" in failed.message
    with pytest.raises(BadInputError, match="top"):
        DescribeParams(model=clip_file, top_k=0)


def test_cli_prints_one_score_and_caption_per_line(tmp_path, clip_file, capsys) -> None:
    image = tmp_path / "picture.png"
    Image.fromarray(PICTURE).save(image)
    assert main(["describe", str(image), "--top", "3", "--model", clip_file, "--quiet"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 3, out
    scores = [float(line.split("  ", 1)[0]) for line in lines]
    assert lines[0].split("  ", 1)[1] == "caption 7"
    assert scores == sorted(scores, reverse=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.safetensors", "picture.png"]


def test_cli_reports_a_missing_picture_in_one_line(tmp_path, clip_file, capsys) -> None:
    assert main(["describe", str(tmp_path / "none.png"), "--model", clip_file]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("studio: error: "), err


def test_the_shipped_model_describes_with_its_own_bank() -> None:
    from studio.models.registry import get_model
    from studio.paths import checkpoints_dir

    spec = get_model("studio-mini-clip", TaskKind.DESCRIBE)
    if not (checkpoints_dir() / spec.files[0].name).is_file():
        pytest.skip("the mini-CLIP checkpoint is not in this checkout")
    finished = run(DescribeParams(top_k=5))
    assert isinstance(finished, JobFinished), finished
    captions = finished.info["captions"]
    assert len(captions) == 5 and all(isinstance(c, str) and c for c, _ in captions)
