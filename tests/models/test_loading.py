"""Safe loading: safetensors and weights-only pickles load; code payloads are refused unrun."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from studio.errors import BadWeightsError, MissingModelError
from studio.models.archs.srvgg import SRVGGNetCompact
from studio.models.descriptor import ImageModel
from studio.models.loading import load_weights, read_state_dict


class Payload:
    """Unpickling this would create a folder: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_with_code_payload_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "x": Payload(str(marker))}, path)
    with pytest.raises(BadWeightsError, match="refused"):
        load_weights(path)
    assert not marker.exists(), "the payload ran"


def test_safetensors_and_wrapped_pth_load_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SRVGGNetCompact(nf=8, num_conv=2, scale=2).eval()
    save_file(net.state_dict(), tmp_path / "a.safetensors")
    torch.save({"params_ema": net.state_dict()}, tmp_path / "b.pth")
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        ref = net(x)
    for name in ("a.safetensors", "b.pth"):
        loaded = load_weights(tmp_path / name)
        assert loaded.arch_id == "srvgg" and loaded.scale == 2
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(x), ref)


def test_random_init_spandrel_model_is_detected_and_runs(tmp_path: Path) -> None:
    from spandrel.architectures.SPAN import SPAN

    torch.manual_seed(0)
    net = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2).eval()
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "span.safetensors"
    )
    loaded = load_weights(tmp_path / "span.safetensors")
    assert loaded.arch_id == "spandrel:SPAN" and loaded.scale == 2
    model = ImageModel(loaded, torch.device("cpu"))
    out = model(np.random.default_rng(0).random((20, 18, 3), dtype=np.float32))
    assert out.shape == (40, 36, 3) and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize(
    ("name", "content", "error", "fragment"),
    [
        ("w.onnx", b"abc", BadWeightsError, "unsupported weight format"),
        ("w.safetensors", b"not a safetensors file", BadWeightsError, "not a valid safetensors"),
        ("w.pth", b"garbage", BadWeightsError, "not a readable"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, name, content, error, fragment) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(error, match=fragment):
        read_state_dict(tmp_path / name)


def test_missing_file_and_unknown_architecture(tmp_path: Path) -> None:
    with pytest.raises(MissingModelError):
        read_state_dict(tmp_path / "nope.safetensors")
    save_file({"foo.weight": torch.zeros(3, 3)}, tmp_path / "odd.safetensors")
    with pytest.raises(BadWeightsError, match="not an architecture Studio recognises"):
        load_weights(tmp_path / "odd.safetensors")


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    net = SRVGGNetCompact(nf=4, num_conv=1, scale=2)
    save_file(net.state_dict(), tmp_path / "m.safetensors")
    with pytest.raises(BadWeightsError, match="checksum"):
        load_weights(tmp_path / "m.safetensors", expected_sha256="0" * 64)
