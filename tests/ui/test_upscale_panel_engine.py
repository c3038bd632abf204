"""The Upscale panel plans with the engine's published device report and shows the variant the
chosen model runs in; it never probes the device itself."""

from __future__ import annotations

import numpy as np
import pytest

from studio.engine import device as device_module
from studio.engine.autotune import (
    Measurement,
    TuneResult,
    TuningStore,
    Variant,
    machine_fingerprint,
)
from studio.engine.config import EngineConfig
from studio.engine.device import describe
from studio.engine.messages import JobFinished
from studio.engine.report import DEFAULT_BUDGET, EngineReady, engine_report
from studio.engine.tasks.tuned import model_key
from studio.engine.thread import EngineThread
from studio.geometry import Rect
from studio.models.registry import get_model
from studio.ui.panels.upscale import UpscalePanel

SMALL_BUDGET = 16 << 20
MODEL = "realesrgan-x4plus"


def report(budget: int = DEFAULT_BUDGET, tuned: dict[str, str] | None = None) -> EngineReady:
    return EngineReady("cpu", "CPU (test)", budget, False, 2, tuned or {})


@pytest.fixture
def panel(qtbot) -> UpscalePanel:
    p = UpscalePanel()
    qtbot.addWidget(p)
    p.model.select(MODEL)
    p.scale.setValue(4.0)
    p.set_image_size(1024, 1024)
    return p


def test_constructing_the_panel_does_not_probe_the_device(qtbot, monkeypatch) -> None:
    def probe(*_args, **_kwargs):
        raise AssertionError("the device was probed on the GUI thread")

    monkeypatch.setattr(device_module, "describe", probe)
    monkeypatch.setattr(device_module, "choose_device", probe)
    qtbot.addWidget(UpscalePanel())


def test_the_estimate_follows_the_budget_the_engine_reports(panel) -> None:
    assert panel.estimate.text().startswith("Result: "), "fits the default budget"
    assert panel.run_button.isEnabled()
    panel.set_engine_report(report(SMALL_BUDGET))
    assert panel.estimate.text().startswith("Too large: ")
    assert not panel.run_button.isEnabled()


def test_a_started_engine_publishes_its_budget_to_the_panel(qtbot, panel) -> None:
    engine = EngineThread(config=EngineConfig(device="cpu", memory_budget=SMALL_BUDGET))
    panel.attach_engine(engine)
    with qtbot.waitSignal(engine.ready, timeout=10000) as ready:
        engine.start()
    try:
        sent: EngineReady = ready.args[0]
        assert sent.device == "cpu" and sent.memory_budget == SMALL_BUDGET and sent.threads >= 1
        # the panel's slot runs on the GUI thread after the signal: wait for it there
        qtbot.waitUntil(lambda: panel.estimate.text().startswith("Too large: "), timeout=5000)
        assert not panel.run_button.isEnabled()
    finally:
        assert engine.shutdown(10000)


def test_the_variant_of_the_last_upscale_is_shown(panel) -> None:
    assert panel.variant.text() == ""
    summary = "bf16 eager (3.4x fp32 eager on a 96x96 tile)"
    image = np.zeros((4, 4, 3), np.uint8)
    info = {"model": MODEL, "variant": summary}
    panel.show_job_info(JobFinished(7, image, Rect(0, 0, 4, 4), info))
    assert panel.variant.text() == f"Runs as {summary} on this machine."
    panel.model.select("lanczos")
    assert panel.variant.text() == ""


def test_before_any_job_the_variant_comes_from_the_engine_report(panel) -> None:
    summary = "fp32 eager (1.0x fp32 eager on a 96x96 tile)"
    panel.set_engine_report(report(tuned={MODEL: summary}))
    assert panel.variant.text() == f"Runs as {summary} on this machine."


def test_the_report_lists_what_was_measured_on_this_machine(tmp_path) -> None:
    import torch

    config = EngineConfig(device="cpu", tuning_file=tmp_path / "tuning.json")
    info = describe(torch.device("cpu"))
    machine = machine_fingerprint(info.device, torch.get_num_threads())
    spec = get_model(MODEL)
    result = TuneResult(
        Variant("bf16"),
        (
            Measurement(Variant("fp32"), 1.0, 0.0, 0.0),
            Measurement(Variant("bf16"), 0.25, 0.001, 0.01),
        ),
        (96, 96),
    )
    store = TuningStore(config.tuning_file)
    store.put(store.key(machine, model_key(spec), (96, 96), "fp32 eager,bf16 eager"), result)
    sent = engine_report(config, info)
    assert sent.tuned == {MODEL: result.summary()}
    assert sent.memory_budget == info.memory_budget and sent.name == info.name
