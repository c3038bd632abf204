"""Run estimates before loading: the family and parameter count read from a checkpoint's header
or a diffusers folder's configs and headers (no weight read), and the dtypes actually prepared
counted once a model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.models.sd.estimate import estimate_run, estimate_source, source_parameters
from studio.models.sd.model import SDFamily, SDModel

pytest.importorskip("diffusers")
from tests.tiny_sd import tiny_sd1_pipeline, tiny_sd_folder, write_single_file


def _parameters(pipe) -> int:
    parts = (pipe.unet, pipe.vae, pipe.text_encoder)
    return sum(p.numel() for part in parts for p in part.parameters())


def test_a_single_file_and_a_folder_tell_family_and_parameters_without_loading(tmp_path) -> None:
    pipe = tiny_sd1_pipeline()
    expected = _parameters(pipe)
    single = write_single_file(pipe, tmp_path / "tiny.safetensors")
    family, count = source_parameters(single)
    assert family is SDFamily.SD1
    assert abs(count - expected) <= expected * 0.001, "the loaded parts, nothing else"
    folder = tiny_sd_folder(tmp_path / "folder")
    assert source_parameters(folder) == (SDFamily.SD1, _parameters(tiny_sd1_pipeline()))


def test_an_unreadable_source_gives_no_estimate(tmp_path: Path) -> None:
    junk = tmp_path / "old.ckpt"
    junk.write_bytes(b"\x80\x02not really a pickle")
    assert estimate_source(junk, 512) is None


def test_the_estimate_before_loading_counts_weights_and_native_size(tmp_path) -> None:
    single = write_single_file(tiny_sd1_pipeline(), tmp_path / "tiny.safetensors")
    estimate = estimate_source(single, None, dtype=torch.float32)
    _family, count = source_parameters(single)
    assert estimate.weights_bytes == 4 * count
    assert estimate == estimate_run(SDFamily.SD1, 512, 512, parameters=count, dtype=torch.float32)
    assert estimate_source(single, 1024).working_bytes > estimate.working_bytes


def test_a_loaded_model_counts_the_dtypes_it_was_prepared_in() -> None:
    from studio.models.sd.speed import prepare_pipeline

    pipe = tiny_sd1_pipeline()
    fp32 = estimate_run(SDModel(SDFamily.SD1, pipe, Path("t")), 512, 512)
    prepare_pipeline(pipe, torch.device("cpu"), "bf16")
    bf16 = estimate_run(SDModel(SDFamily.SD1, pipe, Path("t")), 512, 512)
    assert bf16.weights_bytes < fp32.weights_bytes and bf16.working_bytes < fp32.working_bytes
