"""LoRA files fused into a tiny SD1 pipeline: the diffusers/peft and kohya/A1111 layouts both
move the adapted layer by exactly weight * B @ A; wrong files and wrong families are named.
Every socket connection fails in this module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tiny_sd import tiny_sd1_pipeline, unet_output

from studio.errors import BadInputError, MissingModelError
from studio.models.sd.lora import apply_loras, lora_family
from studio.models.sd.model import FewStep, SDFamily, SDModel
from tests.no_network import blocked_network

LAYER = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
KOHYA = "lora_unet_" + LAYER.replace(".", "_")
RANK = 4


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    with blocked_network():
        yield


@pytest.fixture(scope="module")
def factors() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    down = torch.randn(RANK, 768, generator=g) * 0.05  # 768: SD1's text width
    up = torch.randn(32, RANK, generator=g) * 0.05
    return down, up


@pytest.fixture(scope="module")
def lora_files(factors, tmp_path_factory) -> dict[str, Path]:
    down, up = factors
    root = tmp_path_factory.mktemp("loras")
    peft = root / "peft.safetensors"
    save_file({f"unet.{LAYER}.lora_A.weight": down, f"unet.{LAYER}.lora_B.weight": up}, peft)
    kohya = root / "kohya.safetensors"
    save_file(
        {
            f"{KOHYA}.lora_down.weight": down,
            f"{KOHYA}.lora_up.weight": up,
            f"{KOHYA}.alpha": torch.tensor(float(RANK)),  # alpha = rank: scale 1
        },
        kohya,
    )
    return {"peft": peft, "kohya": kohya}


def adapted(pipe) -> torch.nn.Linear:
    return pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_k


@pytest.mark.parametrize("layout", ["peft", "kohya"])
@pytest.mark.parametrize("weight", [0.7, -0.5])
def test_lora_moves_the_layer_by_weight_times_delta(lora_files, factors, layout, weight) -> None:
    down, up = factors
    pipe = tiny_sd1_pipeline()
    before = adapted(pipe).weight.detach().clone()
    output_before = unet_output(pipe.unet)
    apply_loras(SDModel(SDFamily.SD1, pipe, Path("x")), [(lora_files[layout], weight)])
    layer = adapted(pipe)
    assert type(layer) is torch.nn.Linear  # fused: the adapters are gone again
    delta = layer.weight.detach() - before
    torch.testing.assert_close(delta, weight * (up @ down), atol=1e-6, rtol=1e-4)
    assert not torch.equal(unet_output(pipe.unet), output_before)


def test_an_lcm_lora_makes_the_model_few_step(lora_files, tmp_path) -> None:
    lcm = tmp_path / "lcm-lora-sdv1-5.safetensors"
    lcm.write_bytes(lora_files["peft"].read_bytes())
    model = SDModel(SDFamily.SD1, tiny_sd1_pipeline(), Path("x"))
    apply_loras(model, [(lora_files["kohya"], 1.0)])
    assert model.few_step is FewStep.NONE
    apply_loras(model, [(lcm, 1.0)])
    assert model.few_step is FewStep.LCM


def test_two_loras_add_up(lora_files, factors) -> None:
    down, up = factors
    pipe = tiny_sd1_pipeline()
    before = adapted(pipe).weight.detach().clone()
    loras = [(lora_files["peft"], 0.5), (lora_files["kohya"], 0.25)]
    apply_loras(SDModel(SDFamily.SD1, pipe, Path("x")), loras)
    delta = adapted(pipe).weight.detach() - before
    torch.testing.assert_close(delta, 0.75 * (up @ down), atol=1e-6, rtol=1e-4)


def test_no_loras_changes_nothing() -> None:
    pipe = tiny_sd1_pipeline()
    before = unet_output(pipe.unet)
    apply_loras(SDModel(SDFamily.SD1, pipe, Path("x")), [])
    torch.testing.assert_close(unet_output(pipe.unet), before, atol=0, rtol=0)


def test_wrong_files_are_named(tmp_path, lora_files) -> None:
    model = SDModel(SDFamily.SD1, tiny_sd1_pipeline(), Path("x"))
    with pytest.raises(MissingModelError):
        apply_loras(model, [(tmp_path / "absent.safetensors", 1.0)])
    checkpoint = tmp_path / "checkpoint.safetensors"
    save_file(
        {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, checkpoint
    )
    with pytest.raises(BadInputError, match="not a LoRA: it looks like a Stable Diffusion"):
        apply_loras(model, [(checkpoint, 1.0)])
    xl = tmp_path / "xl-style.safetensors"
    save_file({f"{KOHYA}.lora_down.weight": torch.zeros(RANK, 2048)}, xl)
    with pytest.raises(BadInputError, match=r"a LoRA for SDXL, but the model is SD 1\.x"):
        apply_loras(model, [(xl, 1.0)])


def test_lora_family_from_shapes() -> None:
    assert lora_family({f"{KOHYA}.lora_down.weight": (4, 768)}) is SDFamily.SD1
    assert lora_family({f"unet.{LAYER}.lora_A.weight": (4, 1024)}) is SDFamily.SD2
    xl = {f"{KOHYA}.lora_down.weight": (4, 2048)}
    assert lora_family(xl) is SDFamily.SDXL
    te_only = {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 768)}
    assert lora_family(te_only) is None
