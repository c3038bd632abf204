"""The Stable Diffusion speed path on tiny random pipelines: precision, memory layout, SDPA
attention, the per-machine measurement and the benchmark's functions, with every socket
connection failing in this module."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.engine.config import EngineConfig
from studio.engine.device import DeviceInfo
from studio.engine.events import Progress
from studio.engine.tasks.sd_tuning import UNET_TOLERANCE, network_key, tuned_pipeline
from studio.models.diffusion_api import DenoiseRequest
from studio.models.sd.backend import SDBackend
from studio.models.sd.model import SDFamily, SDModel
from studio.models.sd.speed import (
    configure_for_size,
    converted_copy,
    prepare_pipeline,
    use_sdpa,
    uses_sdpa,
    working_dtype,
)
from tests.no_network import offline_on_one_thread

diffusers = pytest.importorskip("diffusers")
from tiny_sd import tiny_sd1_pipeline, tiny_sdxl_pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
CPU = torch.device("cpu")
#: any CPU may run bf16 (slowly without AVX-512 BF16); the tuner only needs it to run
BF16_CPU = DeviceInfo(CPU, "CPU", 2 << 30, supports_bf16=True)


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    with offline_on_one_thread():
        yield


def _pipeline():
    """The shared tiny SD1 pipeline with a tokenizer its 1000-token text encoder can read."""
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    vocab |= {c: 3 + i for i, c in enumerate(letters)}
    vocab |= {c + "</w>": 29 + i for i, c in enumerate(letters)}
    pipe = tiny_sd1_pipeline()
    pipe.tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    return pipe


def _images(pipe, seed: int = 5) -> np.ndarray:
    backend = SDBackend(SDModel(SDFamily.SD1, pipe, Path("tiny")))
    run = backend.denoise(
        DenoiseRequest(prompt="a red boat", seed=seed, steps=4, width=64, height=64)
    )
    while True:
        try:
            next(run)
        except StopIteration as stop:
            return stop.value


def _conv_weights(module) -> list[torch.Tensor]:
    return [m.weight for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


def test_bf16_pipeline_images_stay_close_to_fp32() -> None:
    reference = _images(_pipeline())
    fast = _images(prepare_pipeline(_pipeline(), CPU, "bf16"))
    diff = np.abs(fast.astype(np.int16) - reference.astype(np.int16))
    assert reference.std() > 10, "a flat image would hide any difference"
    # bf16 keeps 8 bits of mantissa; measured here: mean 0.53 and max 4 levels of 255 after
    # 4 steps and the decoder. Tolerance with margin: mean <= 1.5 levels, every pixel <= 12
    assert diff.mean() <= 1.5 and diff.max() <= 12, f"mean {diff.mean():.2f}, max {diff.max()}"


def test_fp32_preparation_changes_no_pixel() -> None:
    reference = _images(_pipeline())
    same = _images(prepare_pipeline(_pipeline(), CPU, "fp32"))
    diff = np.abs(same.astype(np.int16) - reference.astype(np.int16))
    assert diff.max() <= 1, "channels_last and SDPA reorder sums only (atol 1 on uint8)"


def test_precisions_and_layout_per_part() -> None:
    pipe = prepare_pipeline(tiny_sd1_pipeline(), CPU, "bf16", vae_precision="fp32")
    assert next(pipe.unet.parameters()).dtype == torch.bfloat16
    assert next(pipe.vae.parameters()).dtype == torch.float32
    assert next(pipe.text_encoder.parameters()).dtype == torch.float32, "runs once per job"
    for module in (pipe.unet, pipe.vae):
        weights = _conv_weights(module)
        assert weights and all(
            w.is_contiguous(memory_format=torch.channels_last) for w in weights
        ), "every convolution channels_last"


def test_preparing_twice_keeps_the_same_weights() -> None:
    pipe = prepare_pipeline(tiny_sd1_pipeline(), CPU, "bf16")
    before = [p.data_ptr() for p in pipe.unet.parameters()]
    prepare_pipeline(pipe, CPU, "bf16")
    assert [p.data_ptr() for p in pipe.unet.parameters()] == before


def test_sdpa_replaces_plain_attention_and_leaves_custom_processors() -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    class Custom(AttnProcessor2_0):
        pass

    pipe = tiny_sd1_pipeline()
    pipe.unet.set_attn_processor(AttnProcessor())
    pipe.vae.set_attn_processor(AttnProcessor())
    assert not uses_sdpa(pipe.unet)
    first = next(m for m in pipe.unet.modules() if hasattr(m, "set_processor"))
    first.set_processor(Custom())
    prepare_pipeline(pipe, CPU, "fp32")
    assert uses_sdpa(pipe.unet) and uses_sdpa(pipe.vae)
    assert isinstance(first.processor, Custom), "an adapter's own processor stays"
    assert use_sdpa(pipe.unet) == 0, "nothing left to switch"


def test_large_sizes_tile_the_vae_and_undo_slicing_on_the_cpu() -> None:
    pipe = prepare_pipeline(tiny_sd1_pipeline(), CPU, "fp32")
    configure_for_size(pipe, 512, 512)
    assert not pipe.vae.use_tiling
    configure_for_size(pipe, 1536, 1024)
    assert pipe.vae.use_tiling
    pipe.enable_attention_slicing()
    assert not uses_sdpa(pipe.unet)
    configure_for_size(pipe, 1536, 1024)
    assert uses_sdpa(pipe.unet), "SDPA's fused CPU kernel needs no slicing"


def test_working_dtypes() -> None:
    cuda = torch.device("cuda")
    assert working_dtype(cuda, "auto") == torch.float16
    assert working_dtype(CPU, "auto") == torch.float32, "the engine measures bf16 on the CPU"
    assert working_dtype(CPU, "fp16") == torch.float32, "no fast fp16 kernels on the CPU"
    assert working_dtype(CPU, "bf16") == torch.bfloat16
    with pytest.raises(ValueError):
        working_dtype(CPU, "int8")


def test_compile_is_applied_in_place_when_asked(monkeypatch) -> None:
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append(self))
    pipe = prepare_pipeline(tiny_sd1_pipeline(), CPU, "fp32")
    assert compiled == []
    prepare_pipeline(pipe, CPU, "fp32", compiled=True)
    assert compiled == [pipe.unet], "the UNet itself (pipe.unet keeps its .config)"


def test_converted_copy_leaves_the_original() -> None:
    unet = tiny_sd1_pipeline().unet
    copy = converted_copy(unet, torch.bfloat16)
    assert next(unet.parameters()).dtype == torch.float32
    assert next(copy.parameters()).dtype == torch.bfloat16
    for a, b in zip(unet.parameters(), copy.parameters(), strict=True):
        assert torch.equal(a.to(torch.bfloat16), b)


def test_tuner_measures_once_stores_and_applies(tmp_path) -> None:
    config = EngineConfig(tuning_file=tmp_path / "tuning.json")
    pipe = tiny_sd1_pipeline()
    run = tuned_pipeline(config, BF16_CPU, pipe, lambda: None, latent=(16, 16))
    events, tuning = _drain(run)
    assert any(isinstance(e, Progress) for e in events), "measured the first time"
    labels = {m.variant.label for m in tuning.unet.measurements}
    assert labels == {"fp32 eager", "bf16 eager"}
    bf16 = next(m for m in tuning.unet.measurements if m.variant.dtype == "bf16")
    assert 0 < bf16.mean_error <= UNET_TOLERANCE[0], "errors are relative to the prediction"
    assert next(pipe.unet.parameters()).dtype == tuning.unet.chosen.torch_dtype
    assert next(pipe.vae.parameters()).dtype == tuning.vae.chosen.torch_dtype
    again = tiny_sd1_pipeline()
    events, second = _drain(tuned_pipeline(config, BF16_CPU, again, lambda: None, (16, 16)))
    assert events == [] and second == tuning, "remembered in the tuning file"
    assert next(again.unet.parameters()).dtype == tuning.unet.chosen.torch_dtype


def test_a_fixed_precision_is_not_measured(tmp_path) -> None:
    config = EngineConfig(precision="fp32", tuning_file=tmp_path / "tuning.json")
    pipe = tiny_sd1_pipeline()
    events, tuning = _drain(tuned_pipeline(config, BF16_CPU, pipe, lambda: None, (16, 16)))
    assert events == [] and tuning.unet.measurements == ()
    assert next(pipe.unet.parameters()).dtype == torch.float32


def test_sdxl_unet_probe_runs_with_its_size_conditioning(tmp_path) -> None:
    config = EngineConfig(tuning_file=tmp_path / "tuning.json")
    pipe = tiny_sdxl_pipeline()
    _events, tuning = _drain(tuned_pipeline(config, BF16_CPU, pipe, lambda: None, (16, 16)))
    assert len(tuning.unet.measurements) == 2
    assert network_key("unet", pipe.unet) != network_key("unet", tiny_sd1_pipeline().unet)


def test_benchmark_functions_on_a_tiny_pipeline(tmp_path, monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("diffusion", ROOT / "benchmarks" / "diffusion.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "diffusion", bench)  # its dataclass looks itself up
    spec.loader.exec_module(bench)
    lines: list[str] = []
    rows = bench.run(
        [CPU],
        tiny=True,
        size=64,
        warmup=1,
        timed=1,
        tuning_file=tmp_path / "tuning.json",
        precision="bf16",
        report=lines.append,
    )
    assert [r.path.split()[0] for r in rows] == ["diffusers", "Studio"]
    assert all(r.step_s > 0 and r.vae_decode_s > 0 and r.text_s > 0 for r in rows)
    assert all(r.peak_bytes > 0 for r in rows)
    assert "faster per step" in bench.table(rows, 64)
    assert lines and "chosen" in lines[0]


def _drain(gen) -> tuple[list, object]:
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value
