"""Every shipped weight file is read with its sha256 checked, whatever the task that loads it.

A copy of the needed checkpoints goes to a temporary folder named by ``STUDIO_CHECKPOINTS``
(read only by :mod:`studio.paths`, the edge); one byte of one file is changed so that the file
still loads as valid weights. Only the checksum can refuse it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.engine.config import EngineConfig
from studio.engine.jobs import JobRequest, StylizeParams, UpscaleParams
from studio.engine.messages import JobFailed, JobFinished
from studio.engine.runner import JobRunner
from studio.engine.tasks.generate import GenerateParams, no_pixels
from studio.errors import BadWeightsError
from studio.models import style
from studio.models.architectures import architectures
from studio.models.loading import load_registered
from studio.models.registry import MODELS, get_model
from studio.paths import checkpoints_dir

SHIPPED = checkpoints_dir()


def _copy(folder: Path, model_id: str, damaged: str | None = None) -> None:
    """The files of ``model_id`` copied to ``folder``; ``damaged`` gets one byte changed (the
    lowest mantissa bit of a late float: still finite, still valid safetensors)."""
    for f in get_model(model_id).files:
        source = SHIPPED / f.name
        if not source.is_file():
            pytest.skip(f"{f.name} is not in this checkout")
        data = bytearray(source.read_bytes())
        if f.name == damaged:
            data[-4] ^= 1
        (folder / f.name).write_bytes(bytes(data))


@pytest.fixture
def checkpoints(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STUDIO_CHECKPOINTS", str(tmp_path))
    return tmp_path


def _run(params, image: np.ndarray):
    runner = JobRunner(EngineConfig(device="cpu", precision="fp32", compile="off"))
    return list(runner.run(JobRequest(params, image)))


def _refused(messages, file_name: str) -> None:
    last = messages[-1]
    assert isinstance(last, JobFailed), f"a damaged {file_name} was used: {last}"
    assert last.kind == "bad_weights"
    assert last.message.startswith(f"{file_name}: checksum mismatch"), last.message


IMAGE = np.full((24, 24, 3), 128, np.uint8)


def test_a_damaged_upscaler_is_refused(checkpoints) -> None:
    _copy(checkpoints, "studio-photo-x2", damaged="studio-photo-x2.safetensors")
    messages = _run(UpscaleParams(model="studio-photo-x2", scale=2), IMAGE)
    _refused(messages, "studio-photo-x2.safetensors")


def test_a_damaged_builtin_style_is_refused(checkpoints) -> None:
    _copy(checkpoints, "style-multistyle26", damaged="style-multistyle26.safetensors")
    messages = _run(StylizeParams(style="starry-night"), IMAGE)
    _refused(messages, "style-multistyle26.safetensors")


def test_a_damaged_arbitrary_style_file_is_refused(checkpoints) -> None:
    name = "style-arbitrary-transform.safetensors"
    _copy(checkpoints, "style-arbitrary", damaged=name)
    preset = np.zeros((32, 32, 3), np.uint8)
    messages = _run(StylizeParams(style="image", style_image=preset), IMAGE)
    _refused(messages, name)


def test_a_damaged_generator_is_refused(checkpoints) -> None:
    _copy(checkpoints, "studio-emoji-gan", damaged="studio-emoji-gan.safetensors")
    messages = _run(GenerateParams(model="studio-emoji-gan", count=1), no_pixels())
    _refused(messages, "studio-emoji-gan.safetensors")


def test_intact_copies_load_and_run(checkpoints) -> None:
    _copy(checkpoints, "studio-emoji-gan")
    messages = _run(GenerateParams(model="studio-emoji-gan", count=1), no_pixels())
    assert isinstance(messages[-1], JobFinished)


def test_the_style_loaders_check_the_registry_files_too(checkpoints) -> None:
    _copy(checkpoints, "style-multistyle26", damaged="style-multistyle26.safetensors")
    with pytest.raises(BadWeightsError, match="checksum mismatch"):
        style.load_multistyle()


def test_every_shipped_model_is_built_by_the_one_architecture_list() -> None:
    known = {arch.id for arch in architectures()}
    for spec in MODELS:
        if not spec.files or not all((SHIPPED / f.name).is_file() for f in spec.files):
            continue
        if spec.id not in ("style-arbitrary", "studio-emoji-gan", "studio-photo-x2"):
            continue  # one of each kind keeps this test fast; the others load in their tests
        with torch.inference_mode():
            loaded = load_registered(spec)
        assert all(m.arch_id in known for m in loaded), spec.id
