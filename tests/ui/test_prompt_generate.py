"""The Generate panel with prompts: fields become params, Ctrl+Enter runs, each step's preview
reaches the canvas overlay in order, img2img and the prompted inpaint land as one undo step,
Describe's captions fill the prompt, and each model shows only the options it takes.

A fake denoising backend (tests/fake_denoiser.py) stands in for the models: fast, seeded, one
preview per step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fake_denoiser import FAKE_MODEL, registered
from PySide6.QtCore import Qt
from safetensors.torch import save_file

from fakes import wait_finished
from studio.engine.messages import JobProgress, TileReady
from studio.geometry import Rect
from studio.models.sd.discovery import CHECKPOINT, LORA, ModelEntry
from studio.models.sd.model import FewStep, SDFamily
from studio.ui.qimage import qimage_to_numpy


@pytest.fixture
def fake(win):
    """The fake text model, chosen in the panel."""
    with registered(native=16) as backend:
        win.generate_panel.models.add_path(FAKE_MODEL)
        yield backend


def rows_shown(panel, *widgets) -> list[bool]:
    return [panel.form.isRowVisible(w) for w in widgets]


def test_the_panel_builds_params_from_its_fields(win, fake) -> None:
    panel = win.generate_panel
    panel.prompt.setPlainText("  a red apple \n")
    panel.negative.setPlainText("blurry")
    panel.seed.setValue(42)
    panel.steps.setValue(7)
    panel.guidance.setValue(3.5)
    panel.sampler.setCurrentIndex(panel.sampler.findData("euler"))
    panel.count.setValue(3)
    panel.image_size.setCurrentIndex(panel.image_size.findData(256))
    p = panel.params()
    assert (p.model, p.prompt, p.negative_prompt, p.seed) == (
        FAKE_MODEL,
        "a red apple",
        "blurry",
        42,
    )
    assert (p.steps, p.guidance, p.sampler, p.count, p.size) == (7, 3.5, "euler", 3, 256)
    assert p.mode == "samples" and p.loras == ()
    panel.from_canvas.setChecked(True)
    panel.strength.setValue(30)
    p = panel.params()
    assert (p.mode, p.count, p.strength, p.size) == ("variations", 1, 0.3, 0)
    assert not panel.count.isEnabled(), "img2img makes one image"
    repaint = panel.params("repaint")
    assert (repaint.mode, repaint.strength, repaint.count) == ("repaint", 1.0, 1)


def test_gan_options_are_hidden_for_the_text_model(win, fake) -> None:
    panel = win.generate_panel
    gan_only = (panel.truncation, panel.mode, panel.upscale)
    prompt_only = (panel.prompt, panel.steps, panel.guidance, panel.sampler, panel.image_size)
    assert rows_shown(panel, *gan_only) == [False] * 3
    assert rows_shown(panel, *prompt_only) == [True] * 5
    assert panel.inpaint_button.isVisibleTo(panel)
    assert [panel.image_size.itemData(i) for i in range(4)] == [0, 128, 256, 512]
    panel.models.select("studio-emoji-gan")
    assert rows_shown(panel, *gan_only) == [True] * 3
    assert rows_shown(panel, *prompt_only) == [False] * 5
    assert not panel.inpaint_button.isVisibleTo(panel)
    assert panel.params().prompt == "" and panel.params().model == "studio-emoji-gan"
    assert panel.models.select("studio-text2img"), "Studio's own text model is listed"
    assert rows_shown(panel, *gan_only) == [False] * 3
    assert rows_shown(panel, *prompt_only) == [True] * 5


def test_ctrl_enter_in_the_prompt_runs_and_typing_triggers_no_shortcut(qtbot, win, fake) -> None:
    panel = win.generate_panel
    panel.count.setValue(2)
    panel.steps.setValue(3)
    mask_shown = win.actions["toggle_mask"].isChecked()
    win.task_tabs.setCurrentWidget(panel)
    qtbot.mouseClick(panel.prompt.viewport(), Qt.MouseButton.LeftButton)  # focus, as an artist
    qtbot.waitUntil(panel.prompt.hasFocus)
    qtbot.keyClicks(panel.prompt, "hex crab")  # H, X and C are window shortcuts elsewhere
    assert panel.prompt.text() == "hex crab"
    assert win.actions["toggle_mask"].isChecked() == mask_shown
    assert win.controller.active is None, "typing alone runs nothing"
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    done = wait_finished(qtbot, win)
    assert fake.requests[-1].prompt == "hex crab" and fake.requests[-1].count == 2
    assert panel.prompt.text() == "hex crab", "Ctrl+Enter adds no new line"
    assert done.info["prompt"] == "hex crab" and panel.results.count() == 2
    qtbot.keyClick(panel.prompt, Qt.Key.Key_Return)  # Enter accepts results, but not in here
    assert panel.prompt.toPlainText() == "hex crab\n" and win.controller.staged is not None


def test_each_steps_preview_reaches_the_overlay_in_order(qtbot, win, fake) -> None:
    panel = win.generate_panel
    panel.prompt.setPlainText("a cat")
    panel.count.setValue(1)
    panel.steps.setValue(5)
    seen: list = []

    def on_applied(msg) -> None:
        if isinstance(msg, TileReady) and not msg.final:
            shown = qimage_to_numpy(win.canvas.preview_item.image)[:, :, :3]
            r = msg.rect
            np.testing.assert_array_equal(shown[r.y : r.bottom, r.x : r.right], msg.pixels[..., :3])
            seen.append(("preview", float(msg.pixels[..., :3].mean())))
        elif isinstance(msg, JobProgress) and msg.total == 5:
            seen.append(("step", msg.done))

    win.controller.applied.connect(on_applied)
    panel.run_button.click()
    wait_finished(qtbot, win)
    previews = [v for kind, v in seen if kind == "preview"]
    steps = [v for kind, v in seen if kind == "step"]
    assert len(previews) == 5 and steps == [1, 2, 3, 4, 5], seen
    assert previews == sorted(previews) and previews[0] < previews[-1], "later steps come later"
    assert [k for k, _ in seen[:2]] == ["preview", "step"], "each step's preview comes first"
    assert panel.results.count() == 1, "previews are not cells to pick"


def test_img2img_of_the_selection_lands_in_its_box_as_one_undo_step(qtbot, win, fake) -> None:
    panel = win.generate_panel
    doc = win.document
    before = doc.composite().copy()
    doc.mask[20:50, 30:90] = 1.0  # a selection (selection tools edit the mask)
    panel.prompt.setPlainText("stone")
    panel.from_canvas.setChecked(True)
    panel.strength.setValue(50)
    panel.run_button.click()
    done = wait_finished(qtbot, win)
    assert win.controller.staged.request.roi == Rect(30, 20, 60, 30)
    assert done.image.shape[:2] == (30, 60) and panel.results.count() == 0
    win.accept_result()
    after = doc.composite()
    outside = np.ones(after.shape[:2], bool)
    outside[20:50, 30:90] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    assert (after[20:50, 30:90] != before[20:50, 30:90]).any()
    win.undo()  # one step takes it all back
    np.testing.assert_array_equal(doc.composite(), before)


def test_prompted_inpaint_changes_only_the_grown_mask(qtbot, win, fake) -> None:
    panel = win.generate_panel
    doc = win.document
    before = doc.composite().copy()
    panel.prompt.setPlainText("a window")
    panel.inpaint_button.click()
    assert "Paint the mask" in (win.last_error or ""), "no mask: one clear message"
    assert win.controller.active is None
    doc.mask[40:60, 50:70] = 1.0
    panel.inpaint_button.click()
    done = wait_finished(qtbot, win)
    assert done.info["mode"] == "repaint" and fake.requests[-1].mask is not None
    win.accept_result()
    after = doc.composite()
    far = np.ones(after.shape[:2], bool)
    far[40 - 12 : 60 + 12, 50 - 12 : 70 + 12] = False  # the mask grown and feathered
    np.testing.assert_array_equal(after[far], before[far])
    assert (after[40:60, 50:70] != before[40:60, 50:70]).any()
    win.undo()
    np.testing.assert_array_equal(doc.composite(), before)


CAPTIONS = [f"caption {i}" for i in range(12)]


@pytest.fixture
def clip_file(tmp_path: Path, photo) -> str:
    """A tiny random mini-CLIP whose caption 7 is exactly the vector of the test photo."""
    from studio.models.archs.mini_clip import MiniClip
    from studio.models.describe import prepare

    torch.manual_seed(0)
    model = MiniClip((4, 8, 8, 8), dim=16).eval()
    bank = F.normalize(torch.randn(len(CAPTIONS), 16), dim=1)
    with torch.no_grad():
        bank[7] = model.encode_image(prepare(photo))[0]
    model.attach_bank(CAPTIONS, bank)
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()} | model.bank_state(), path)
    return str(path)


def test_describe_lists_captions_and_a_click_fills_the_prompt(qtbot, win, fake, clip_file):
    panel = win.generate_panel
    panel.describer.model = clip_file
    with qtbot.waitSignal(panel.describer.captions, timeout=30000):
        panel.describe_button.click()
    assert panel.captions.captions()[0] == "caption 7" and panel.captions.count() == 5
    assert panel.form.isRowVisible(panel.captions)
    assert win.controller.staged is None, "describing stages no result"
    rect = panel.captions.visualItemRect(panel.captions.item(0))
    qtbot.mouseClick(panel.captions.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.prompt.text() == "caption 7"


def test_stable_diffusion_files_are_listed_with_their_loras(win, monkeypatch, tmp_path) -> None:
    from studio.ui.panels import sd_models

    ckpt = tmp_path / "dreamy.safetensors"
    listed = [
        ModelEntry(ckpt, "dreamy", CHECKPOINT, SDFamily.SD1, 2 * 2**30, "CreativeML OpenRAIL-M"),
        ModelEntry(tmp_path / "ink.safetensors", "ink", LORA, SDFamily.SD1, 9 * 2**20),
        ModelEntry(tmp_path / "xl.safetensors", "xl", LORA, SDFamily.SDXL, 9 * 2**20),
        ModelEntry(tmp_path / "fast", "fast", CHECKPOINT, SDFamily.SDXL, 7 * 2**30, "", False,
                   FewStep.TURBO),
    ]  # fmt: skip
    asked: list = []
    monkeypatch.setattr(
        "studio.models.sd.discovery.list_sd_models",
        lambda user, other: asked.append(other) or listed,
    )
    real_kind = sd_models.backend_kind
    monkeypatch.setattr(
        sd_models, "backend_kind", lambda m: "sd" if m.startswith(str(tmp_path)) else real_kind(m)
    )
    models = win.generate_panel.models
    models.set_models_folder(str(tmp_path / "ComfyUI"))
    assert asked[-1] == tmp_path / "ComfyUI"
    assert win.settings.sd_models_folder == str(tmp_path / "ComfyUI"), "remembered"
    labels = [models.combo.itemText(i) for i in range(models.combo.count())]
    assert "dreamy — SD 1.x · 2.0 GB" in labels and "fast — SDXL Turbo · 7.0 GB" in labels
    assert models.select(str(ckpt))
    index = models.combo.currentIndex()
    assert "CreativeML" in models.combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert [row.entry.name for row in models.lora_rows] == ["ink"], "only LoRAs of its family"
    panel = win.generate_panel
    assert panel.image_size.itemData(0) == 0 and panel.image_size.findData(768) > 0
    models.lora_rows[0].check.setChecked(True)
    models.lora_rows[0].weight.setValue(0.6)
    assert panel.params().loras == ((str(tmp_path / "ink.safetensors"), 0.6),)
    models.select("studio-emoji-gan")
    assert models.loras() == () and not models.lora_box.isVisibleTo(models)
