"""Run bookkeeping shared by the training scripts (studio.training.run), and tiny VAE/GAN runs."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import signal
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
import torch
from safetensors import safe_open

from studio.training import run as rt
from studio.training import train_gan, train_vae


def test_lr_schedule_warmup_peak_and_end() -> None:
    lr, lr_min, warmup, total = 1e-3, 1e-5, 10, 110
    assert rt.lr_at(0, total, lr, lr_min, warmup) == pytest.approx(1e-4)
    assert rt.lr_at(4, total, lr, lr_min, warmup) == pytest.approx(5e-4)
    assert rt.lr_at(warmup, total, lr, lr_min, warmup) == pytest.approx(lr)
    assert rt.lr_at(60, total, lr, lr_min, warmup) == pytest.approx((lr + lr_min) / 2)
    assert rt.lr_at(total, total, lr, lr_min, warmup) == pytest.approx(lr_min)
    assert rt.lr_at(total + 50, total, lr, lr_min, warmup) == pytest.approx(lr_min)
    values = [rt.lr_at(s, total, lr, lr_min, warmup) for s in range(warmup, total + 1)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_set_lr_sets_every_group_of_every_optimiser() -> None:
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt1 = torch.optim.Adam([{"params": [a.weight]}, {"params": [a.bias]}], lr=1.0)
    opt2 = torch.optim.SGD(b.parameters(), lr=1.0)
    rt.set_lr(0.25, opt1, opt2)
    assert [g["lr"] for o in (opt1, opt2) for g in o.param_groups] == [0.25, 0.25, 0.25]


def _state(run: rt.Run, model: torch.nn.Module, rng: np.random.Generator, step: int) -> dict:
    cfg = {"z": 4, "lr": 1e-3}
    hist = [{"step": step, "psnr": 30.0}]
    return {"model": model.state_dict()} | run.progress(step, 12.5, rng, cfg, hist)


def test_state_round_trip_restores_rngs_and_progress(tmp_path: Path) -> None:
    run = rt.Run(tmp_path / "r")
    model, rng = torch.nn.Linear(3, 2), np.random.default_rng(5)
    torch.manual_seed(1)
    run.save(_state(run, model, rng, 7), model, {"arch": "lin", "steps": 7}, tmp_path / "x.st")
    want_np, want_torch = rng.random(3), torch.rand(3)

    st = run.load({"z": 4}, ("z",))
    assert st is not None
    assert list(st) == ["model", "step", "wall", "rng_numpy", "rng_torch", "config", "history"]
    rng2 = np.random.default_rng(99)
    torch.manual_seed(99)
    assert run.resume(st, rng2) == (7, 12.5, [{"step": 7, "psnr": 30.0}])
    assert np.array_equal(rng2.random(3), want_np) and torch.equal(torch.rand(3), want_torch)
    for k, v in model.state_dict().items():
        assert torch.equal(st["model"][k], v)
    for path in (tmp_path / "r/model.safetensors", tmp_path / "x.st"):
        with safe_open(str(path), "pt") as f:
            assert f.metadata() == {"arch": "lin", "steps": "7"}
            assert set(f.keys()) == {"weight", "bias"}
    run.close()
    assert "saved state at step 7" in (tmp_path / "r/log.txt").read_text()


def test_load_without_state_and_with_other_architecture(tmp_path: Path) -> None:
    run = rt.Run(tmp_path / "r")
    assert run.load({"z": 4}, ("z",)) is None
    rt.save_state(run.state_file, {"config": {"z": 4}, "step": 1})
    with pytest.raises(SystemExit, match="z=4 differs from 8"):
        run.load({"z": 8}, ("z",))
    run.close()


def test_crash_mid_write_keeps_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.pt"
    rt.save_state(path, {"step": 1, "w": torch.ones(4)})

    def crash(obj: object, f: BinaryIO) -> None:
        f.write(b"half a pickle")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        rt.save_state(path, {"step": 2, "w": torch.zeros(4)})
    st = torch.load(path, weights_only=True)
    assert st["step"] == 1 and torch.equal(st["w"], torch.ones(4))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"], "no temporary file is left"


def test_log_lines_are_timestamped_and_appended(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for msg in ("first", "second"):
        run = rt.Run(tmp_path / "r")
        run.log(msg)
        run.close()
    lines = (tmp_path / "r/log.txt").read_text().splitlines()
    assert [ln[20:] for ln in lines] == ["first", "second"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d .+", ln) for ln in lines)
    assert capsys.readouterr().out.splitlines() == lines
    assert (tmp_path / "r/pid").read_text() == f"{os.getpid()}\n"


def test_tick_evaluates_saves_and_stops(tmp_path: Path) -> None:
    calls: list[str] = []
    run = rt.Run(tmp_path / "r", save_minutes=math.inf, max_minutes=None, eval_every=2)
    run.start_clock()
    stops = [
        run.tick(s, lambda: calls.append("eval"), lambda: calls.append("save")) for s in (1, 2)
    ]
    assert calls == ["eval"] and stops == [False, False]
    assert run.tick(4, None, lambda: calls.append("save")) is False
    run.save_minutes, run.max_minutes = 0.0, 0.0
    assert run.tick(5, lambda: calls.append("eval"), lambda: calls.append("save")) is True
    assert calls == ["eval", "save"]
    run.close()


def test_finish_evaluates_unless_done_then_saves_and_closes(tmp_path: Path) -> None:
    calls: list[str] = []
    for history, want in (([{"step": 3}], ["save"]), ([{"step": 2}], ["eval", "save"])):
        calls.clear()
        run = rt.Run(tmp_path / "r")
        run.finish(3, history, lambda: calls.append("eval"), lambda: calls.append("save"))
        assert calls == want
    calls.clear()
    rt.Run(tmp_path / "r").finish(3, [], None, lambda: calls.append("save"))
    assert calls == ["save"]


def test_signal_sets_stop_and_close_restores_the_handler(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    run = rt.Run(tmp_path / "r")
    run.catch_signals()
    assert not run.stop
    os.kill(os.getpid(), signal.SIGTERM)
    assert run.stop
    run.close()
    assert signal.getsignal(signal.SIGTERM) is before


def test_meter_sums_counts_and_laps() -> None:
    meter = rt.Meter(2)
    meter.add(1.0, 0.5)
    meter.add(3.0, 0.25)
    sums, n, dt = meter.lap()
    assert sums.tolist() == [4.0, 0.75] and n == 2 and dt >= 0
    assert meter.count == 0 and meter.sums.tolist() == [0.0, 0.0]
    assert [meter.due(s, 10, 25) for s in (9, 10, 11, 25)] == [False, True, False, True]
    line = rt.loss_line(10, np.array([0.5, 0.5]), 2, 2.0, 1e-3)
    assert line == "step 10 loss 0.25000 lr 1.00e-03 1.00 steps/s (data 25%)"


def test_run_args_defaults_are_per_script() -> None:
    ap = argparse.ArgumentParser()
    rt.add_run_args(ap, data=Path("/d"), save_minutes=7.0, log_every=3, eval_every=0)
    a = ap.parse_args([])
    assert (a.seed, a.bf16, a.data, a.runs, a.init, a.export) == (
        0,
        False,
        Path("/d"),
        rt.RUNS,
        None,
        None,
    )
    assert (a.save_minutes, a.log_every, a.eval_every, a.max_minutes, a.threads) == (
        7.0,
        3,
        0,
        None,
        1,
    )
    for mod, want in ((train_vae, (10.0, 100, 2000)), (train_gan, (10.0, 100, 1000))):
        a = mod.build_parser().parse_args([])
        assert (a.save_minutes, a.log_every, a.eval_every) == want


def _emoji_data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for split, n in (("train", 16), ("val", 8)):
        images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        labels = json.dumps([{"i": i} for i in range(n)])
        np.savez(root / f"{split}.npz", images=images, labels=np.array(labels))
    return root


def test_tiny_vae_run_saves_and_resumes(tmp_path: Path) -> None:
    # train_gan shares this loop but is left out: its batch-norm recalibration (32 batches of
    # 64 through the full-size generator at every eval and save) takes ~15 s even at 2 steps.
    mod = train_vae
    data = _emoji_data(tmp_path / "emoji")
    base = ["--name", "tiny", "--z", "8", "--batch", "2", "--data", str(data)]
    base += ["--runs", str(tmp_path / "runs"), "--log-every", "1", "--eval-every", "0"]
    assert mod.train(mod.build_parser().parse_args([*base, "--steps", "2"]))["step"] == 2
    st = torch.load(tmp_path / "runs/tiny/state.pt", weights_only=True)
    assert st["step"] == 2 and st["config"]["z"] == 8
    assert mod.train(mod.build_parser().parse_args([*base, "--steps", "3"]))["step"] == 3
    log = (tmp_path / "runs/tiny/log.txt").read_text()
    assert "resumed at step 2" in log and "saved state at step 3" in log
    assert len([ln for ln in log.splitlines() if " step 3 loss" in ln]) == 1
    with safe_open(str(tmp_path / "runs/tiny/model.safetensors"), "pt") as f:
        assert f.metadata()["steps"] == "3"
