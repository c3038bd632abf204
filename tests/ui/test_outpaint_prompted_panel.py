"""The Inpaint panel's "Extend with a prompt": one of the artist's SD models and a prompt reach
the outpaint parameters only when ticked."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from studio.engine.jobs import PromptedFill
from studio.models.samplers import DEFAULT_SAMPLER
from studio.paths import user_models_dir
from studio.ui.panels.inpaint import InpaintPanel
from studio.ui.panels.panel_run import NothingToRun

U = "model.diffusion_model."


def sd1_file(name: str):
    """A header-true SD 1.x miniature (the tensors discovery reads, all zeros)."""
    path = user_models_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        U + "input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
        U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(640, 768),
        "first_stage_model.decoder.conv_out.weight": torch.zeros(3, 8, 3, 3),
    }
    save_file(state, str(path))
    return path


@pytest.fixture
def panel(qtbot) -> InpaintPanel:
    widget = InpaintPanel()
    qtbot.addWidget(widget)
    return widget


def test_ticked_the_params_carry_the_model_and_prompt(panel) -> None:
    model = sd1_file("dreamy.safetensors")
    assert panel.outpaint_params((64, 48)).prompted is None, "unticked: the method fills"
    panel.prompted.setChecked(True)
    combo = panel.prompted_model
    assert "dreamy — SD 1.x" in combo.currentText()
    panel.prompted_prompt.setText("  a misty lake at dawn ")
    params = panel.outpaint_params((64, 48))
    assert params.prompted == PromptedFill(
        model=str(model),
        prompt="a misty lake at dawn",
        negative_prompt="",
        steps=20,
        guidance=5.0,
        sampler=DEFAULT_SAMPLER,
    )
    assert params.right == panel.extend.value(), "the margins are unchanged"
    panel.prompted.setChecked(False)
    assert panel.outpaint_params((64, 48)).prompted is None
    assert not combo.isEnabled() and not panel.prompted_prompt.isEnabled()


def test_models_added_later_are_listed_when_ticked_again(panel) -> None:
    panel.prompted.setChecked(True)
    assert panel.prompted_model.currentData() is None
    assert panel.outpaint_params((64, 48)).prompted is None
    with pytest.raises(NothingToRun, match="Stable Diffusion"):
        panel._outpaint_for((64, 48))
    panel.prompted.setChecked(False)
    model = sd1_file("later.safetensors")
    panel.prompted.setChecked(True)
    assert panel.outpaint_params((64, 48)).prompted.model == str(model)
