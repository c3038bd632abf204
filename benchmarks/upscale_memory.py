"""Upscale memory: the Upscale panel's estimate against the measured peak, per model and size.

Each case runs in a fresh process (this script with ``--child``): import everything, optionally
warm the model cache with a 16x16 job, then run the upscale through the engine's runner and take
its peak resident set size minus the resident size just before: what the job itself needed on
top of the running app. "cold" includes loading the model, "warm" is a model already in the
cache. On Linux the peak (``VmHWM``) is reset first through ``/proc/self/clear_refs``, so an
earlier transient (imports, the model load) cannot hide the job's peak; elsewhere it is
``ru_maxrss`` before and after.

    python benchmarks/upscale_memory.py [--cases lanczos:256:2,studio-photo-x4:192:4] [--warm]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys

DEFAULT_CASES = (
    "lanczos:384:2",
    "studio-photo-x2:384:2",
    "studio-photo-x4:192:4",
    "realesr-animevideov3:192:4",
    "waifu2x-photo-x2-noise1:384:2",
    "realesrgan-x4plus:192:4",
    "studio-photo-x4:512:4",
)


def _reset_peak() -> bool:
    """Reset the kernel's peak resident size to the current one (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _resident(field: str, from_proc: bool) -> int:
    """Bytes: ``VmRSS`` (now) or ``VmHWM`` (peak) from /proc; else the ``ru_maxrss`` peak."""
    if from_proc:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(field + ":"))
        return int(line.split()[1]) * 1024
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit


def child(model: str, size: int, scale: float, warm: bool) -> dict:
    """One measurement in this (fresh) process."""
    import numpy as np
    import torch

    from studio.engine.config import EngineConfig
    from studio.engine.device import configure_cpu_threads
    from studio.engine.jobs import JobRequest, UpscaleParams
    from studio.engine.messages import JobFinished
    from studio.engine.runner import JobRunner
    from studio.engine.tasks.upscale import plan_upscale
    from studio.models.registry import get_model

    configure_cpu_threads(EngineConfig.from_environment().cpu_threads)
    runner = JobRunner()
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    params = UpscaleParams(model=model, scale=scale)
    with torch.inference_mode():
        if warm:
            list(runner.run(JobRequest(params, np.zeros((16, 16, 3), np.uint8))))
        gc.collect()
        from_proc = _reset_peak()
        before = _resident("VmRSS", from_proc)
        for message in runner.run(JobRequest(params, image)):  # keep none: the GUI paints tiles
            last = message
        del message
        after = _resident("VmHWM", from_proc)
    assert isinstance(last, JobFinished), last
    budget = runner.device_info.memory_budget
    plan = plan_upscale(get_model(model, "upscale"), size, size, params, budget)
    out = list(last.image.shape[:2])
    return {
        "measured": after - before,
        "estimate": plan.memory_bytes,
        "tile": plan.tile,
        "out": out,
    }


def measure(model: str, size: int, scale: float, warm: bool) -> dict:
    """Peak extra resident bytes of one upscale in a fresh process, and the plan's estimate."""
    argv = [sys.executable, __file__, "--child", model, str(size), str(scale)]
    out = subprocess.run([*argv, "1" if warm else "0"], capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise SystemExit(f"{model} {size}: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        model, size, scale, warm = sys.argv[2:6]
        print(json.dumps(child(model, int(size), float(scale), warm == "1")))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help="model:size:scale,...")
    parser.add_argument("--warm", action="store_true", help="model already cached")
    args = parser.parse_args()
    print(
        f"{'model':<28} {'input':>7} {'output':>9} {'tile':>5} {'measured':>9} "
        f"{'estimate':>9} {'est/meas':>8}  ({'warm' if args.warm else 'cold'} cache)"
    )
    for case in args.cases.split(","):
        model, size, scale = case.split(":")
        row = measure(model, int(size), float(scale), args.warm)
        mib_m, mib_e = row["measured"] / 2**20, row["estimate"] / 2**20
        h, w = row["out"]
        print(
            f"{model:<28} {size + 'px':>7} {f'{w}x{h}':>9} {row['tile']:>5} {mib_m:>7.0f} M "
            f"{mib_e:>7.0f} M {mib_e / max(mib_m, 1):>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
