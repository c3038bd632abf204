"""Seconds per megapixel of the Stylize models: our PyTorch ports vs plain onnxruntime sessions.

Both run in the same process on the same inputs, interleaved, best of ``--reps`` after a warm-up
run, with the same thread count. Rows:

Ours runs fp32 in NCHW (default, exact) and channels_last (``.to(channels_last=True)``).

* ``multistyle26``: one style at N x N. onnxruntime runs ``checkpoints/multistyle26.onnx``.
* ``arbitrary``: style prediction at 256x256 plus the transform at N x N. onnxruntime runs the
  int8 ``arbitrary_predict.onnx`` and ``arbitrary_transform.onnx``; the transform's input is
  declared 384x384, so its spatial dims are made symbolic in memory first (needs ``onnx``);
  the graph is otherwise unchanged and runs at any size.

    python benchmarks/stylize_models.py --sizes 1024,2048 --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from studio.models.style import MultiStyleModel, load_arbitrary, load_multistyle


def _session(src: str | bytes, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _dynamic_hw(path: Path) -> bytes:
    import onnx

    model = onnx.load(str(path))
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[1].dim_param, dims[2].dim_param = "h", "w"
    return model.SerializeToString()


def _best(fns: dict[str, callable], reps: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times = {k: float("inf") for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k] = min(times[k], time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoints", default="checkpoints")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck = Path(args.checkpoints)

    multi = load_multistyle(ck / "style-multistyle26.safetensors")
    multi_cl = load_multistyle(ck / "style-multistyle26.safetensors").to(channels_last=True)
    arb_files = (
        ck / "style-arbitrary-predict.safetensors",
        ck / "style-arbitrary-transform.safetensors",
    )
    arb = load_arbitrary(*arb_files)
    arb_cl = load_arbitrary(*arb_files).to(channels_last=True)
    ms_sess = _session(str(ck / "multistyle26.onnx"), args.threads)
    pr_sess = _session(str(ck / "arbitrary_predict.onnx"), args.threads)
    tr_sess = _session(_dynamic_hw(ck / "arbitrary_transform.onnx"), args.threads)
    tr_in = [i.name for i in tr_sess.get_inputs()]

    rng = np.random.default_rng(0)
    weights = MultiStyleModel.style_weights(7)
    style = rng.random((256, 256, 3), dtype=np.float32)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        img = rng.random((n, n, 3), dtype=np.float32)
        nchw = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
        style_t = torch.from_numpy(style).permute(2, 0, 1)

        def ort_arbitrary(img: np.ndarray = img) -> None:
            vec = pr_sess.run(None, {"style_image": style[None]})[0]
            tr_sess.run(None, {tr_in[0]: img[None], tr_in[1]: vec})

        t = _best(
            {
                "ours": lambda x=nchw: multi(x, weights),
                "ours_cl": lambda x=nchw: multi_cl(x, weights),
                "ort": lambda x=nchw: ms_sess.run(
                    None, {"image": x.numpy(), "style_weights": weights.numpy()}
                ),
            },
            args.reps,
        )
        rows.append(("multistyle26", n, t["ours"], t["ours_cl"], t["ort"]))
        t = _best(
            {
                "ours": lambda x=nchw, s=style_t: arb.transfer(x, arb.predict(s)),
                "ours_cl": lambda x=nchw, s=style_t: arb_cl.transfer(x, arb_cl.predict(s)),
                "ort": ort_arbitrary,
            },
            args.reps,
        )
        rows.append(("arbitrary (predict+transform)", n, t["ours"], t["ours_cl"], t["ort"]))

    print(f"threads={args.threads}, best of {args.reps} (seconds per megapixel; lower is better)")
    cols = ("ours NCHW", "ours CL", "ORT", "NCHW/ORT")
    print(f"{'model':30s} {'size':>9s} {cols[0]:>10s} {cols[1]:>9s} {cols[2]:>7s} {cols[3]:>9s}")
    for name, n, ours, ours_cl, ort in rows:
        mp = n * n / 1e6
        print(
            f"{name:30s} {f'{n}x{n}':>9s} {ours / mp:10.3f} {ours_cl / mp:9.3f} {ort / mp:7.3f}"
            f" {ours / ort:9.2f}"
        )


if __name__ == "__main__":
    main()
