"""The editor with a 1x restoration model and an animated file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from fakes import wait_finished


def test_a_1x_restoration_file_runs_from_the_upscale_panel(qtbot, win, tmp_path: Path) -> None:
    from studio.models.archs.srvgg import SRVGGNetCompact

    torch.manual_seed(0)
    net = SRVGGNetCompact(nf=8, num_conv=2, scale=1)
    path = tmp_path / "dejpeg-1x.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    before = win.document.composite().copy()
    panel = win.upscale_panel
    panel.model.add_file(str(path))
    panel.scale.setValue(1.0)
    panel.run_button.click()
    wait_finished(qtbot, win)
    win.accept_result()
    after = win.document.composite()
    assert (win.document.width, win.document.height) == (128, 96)
    assert not np.array_equal(after, before), "the restoration ran on the pixels"


def test_opening_an_animated_gif_says_only_the_first_frame_is_edited(win, tmp_path) -> None:
    frames = [Image.fromarray(np.full((24, 32, 3), 20 * i, np.uint8)) for i in range(12)]
    gif = tmp_path / "x.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50)
    assert win.open_path(gif)
    assert win.statusBar().currentMessage() == "x.gif has 12 frames; Studio edits the first"
    assert (win.document.width, win.document.height) == (32, 24)
