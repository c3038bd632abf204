"""Choosing the fastest precision/compile variant by measuring, and remembering the choice."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch

from studio.engine.autotune import (
    FP32_EAGER,
    TOLERANCE,
    Measurement,
    TuneResult,
    TuningStore,
    Variant,
    choose,
    machine_fingerprint,
    measure,
)

BF16 = Variant("bf16")
BF16_COMPILED = Variant("bf16", compiled=True)


def fake_build(delays: dict[Variant, float], offsets: dict[Variant, float], fail=()):
    def build(variant: Variant):
        if variant in fail:
            raise RuntimeError("no compiler")

        def fn(tile: np.ndarray) -> np.ndarray:
            time.sleep(delays[variant])
            return tile + np.float32(offsets.get(variant, 0.0))

        return fn

    return build


def test_fastest_variant_within_tolerance_wins() -> None:
    tile = np.zeros((8, 8, 3), np.float32)
    delays = {FP32_EAGER: 0.03, BF16: 0.01, BF16_COMPILED: 0.001}
    # the compiled variant is fastest but drifts 10/255 from fp32: over the 8/255 max tolerance
    offsets = {BF16: 0.3 / 255, BF16_COMPILED: 10 / 255}
    ms = measure(fake_build(delays, offsets), tile, [BF16, BF16_COMPILED])
    assert [m.variant for m in ms] == [FP32_EAGER, BF16, BF16_COMPILED]
    assert ms[0].mean_error == 0.0
    assert ms[1].within_tolerance and not ms[2].within_tolerance
    assert choose(ms) == BF16


def test_failing_variant_is_left_out_and_fp32_is_the_fallback() -> None:
    tile = np.zeros((4, 4, 3), np.float32)
    delays = {FP32_EAGER: 0.0, BF16: 0.0}
    ms = measure(
        fake_build(delays, {BF16: 1.0}, fail=(BF16_COMPILED,)), tile, [BF16_COMPILED, BF16]
    )
    assert [m.variant for m in ms] == [FP32_EAGER, BF16]
    assert choose(ms) == FP32_EAGER  # bf16 is off by 255/255


def test_tolerance_is_the_stated_one() -> None:
    assert tuple(TOLERANCE) == (0.5 / 255, 8 / 255)
    edge = Measurement(BF16, 1.0, 0.5 / 255, 8 / 255)
    assert edge.within_tolerance
    assert not Measurement(BF16, 1.0, 0.51 / 255, 1 / 255).within_tolerance


def test_store_round_trip_and_corrupt_file(tmp_path) -> None:
    store = TuningStore(tmp_path / "tuning.json")
    ms = (Measurement(FP32_EAGER, 2.0, 0.0, 0.0), Measurement(BF16, 0.5, 0.001, 0.01))
    result = TuneResult(BF16, ms, (256, 256))
    key = store.key("machine-a", "realesrgan-x4plus", (256, 256), "bf16")
    assert store.get(key) is None
    store.put(key, result)
    again = TuningStore(tmp_path / "tuning.json").get(key)
    assert again == result
    assert again.speedup == pytest.approx(4.0)
    assert "bf16 eager" in again.summary() and "4.0x" in again.summary()
    assert store.results_for("machine-a", "realesrgan-x4plus") == [result]
    assert store.results_for("machine-b", "realesrgan-x4plus") == []
    (tmp_path / "tuning.json").write_text("[" * 100000)
    assert store.get(key) is None  # unreadable: measured again, never a crash
    store.put(key, result)
    assert store.get(key) == result
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    memory = TuningStore(None)  # no file: kept for the life of the store, nothing written
    memory.put(key, result)
    assert memory.get(key) == result
    assert memory.results_for("machine-a", "realesrgan-x4plus") == [result]


def test_fingerprint_depends_on_threads_and_is_stable() -> None:
    cpu = torch.device("cpu")
    assert machine_fingerprint(cpu, 2) == machine_fingerprint(cpu, 2)
    assert machine_fingerprint(cpu, 2) != machine_fingerprint(cpu, 1)


def test_measures_a_real_network_in_bf16() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1)
    )

    def build(variant: Variant):
        module = copy.deepcopy(net).to(variant.torch_dtype)

        def fn(tile: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(tile.transpose(2, 0, 1))[None].to(variant.torch_dtype)
            with torch.inference_mode():
                return module(x)[0].float().permute(1, 2, 0).numpy()

        return fn

    tile = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    ms = measure(build, tile, [BF16])
    assert [m.variant for m in ms] == [FP32_EAGER, BF16]
    assert 0 < ms[1].mean_error < 0.05  # bf16 really ran: close to, but not equal to, fp32


def test_the_engine_measures_once_then_reads_the_choice(tmp_path, photo) -> None:
    """First job on a machine measures (a progress stage says so) and remembers; a new engine
    reads the choice without measuring; a fixed precision never measures."""
    from studio.engine.config import EngineConfig
    from studio.engine.device import describe
    from studio.engine.jobs import JobRequest, UpscaleParams
    from studio.engine.messages import JobFinished, JobProgress
    from studio.engine.runner import JobRunner

    def run(config):
        msgs = list(JobRunner(config).run(JobRequest(UpscaleParams("studio-photo-x2", 2), photo)))
        stages = [m.stage for m in msgs if isinstance(m, JobProgress)]
        assert isinstance(msgs[-1], JobFinished), msgs[-1]
        return msgs[-1], any("measuring" in s for s in stages)

    config = EngineConfig(tuning_file=tmp_path / "tuning.json")
    first, measured = run(config)
    bf16 = describe(torch.device("cpu")).supports_bf16
    assert measured == bf16  # nothing to choose between without bf16
    assert "variant" in first.info and first.timings["load_s"] > 0
    if bf16:
        assert (tmp_path / "tuning.json").is_file()
    again, measured_again = run(config)
    assert not measured_again and again.info["variant"] == first.info["variant"]
    fixed, measured_fixed = run(EngineConfig(precision="fp32", tuning_file=tmp_path / "other.json"))
    assert not measured_fixed and fixed.info["variant"].startswith("fp32 eager")
    np.testing.assert_allclose(first.image, fixed.image, atol=8)  # within the tolerance
