"""Inpaint speed per method through the engine (crop strategy), one table.

Two cases from the issue: a 1024x1024 photo with a ~15 % free-form mask, and a 4096x4096 photo
with a ~5 % mask in a few separate regions. Each method runs through ``JobRunner`` exactly as the
CLI and GUI do (region crops, downscale beyond the method's comfortable size, colour match,
feathered blend), with its model already cached, as in an editing session.

    python benchmarks/inpaint.py [--methods telea,navier-stokes,patchmatch,studio-inpaint]
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

from studio.engine.config import EngineConfig
from studio.engine.device import configure_cpu_threads
from studio.engine.inpaint_regions import grow_and_feather
from studio.engine.jobs import InpaintParams, JobRequest
from studio.engine.messages import JobFailed, JobFinished
from studio.engine.runner import JobRunner
from studio.models.registry import all_models

TARGETS = {"studio-inpaint": (2.0, 4.0)}


def photo(size: int) -> np.ndarray:
    base = Image.fromarray(data.astronaut()).resize((size, size), Image.LANCZOS)
    return np.asarray(base)


def stroke_mask(size: int, coverage: float, regions: int, seed: int) -> np.ndarray:
    """Thick random strokes in ``regions`` separate places until ``coverage`` is reached."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    centres = rng.uniform(0.15, 0.85, (regions, 2)) * size
    width = max(4, size // 40)
    while mask.mean() < coverage:
        cx, cy = centres[rng.integers(regions)]
        pts = np.cumsum(rng.normal(0, size / 40, (6, 2)), axis=0) + np.array([cx, cy])
        cv2.polylines(mask, [pts.astype(np.int32)], False, 1, thickness=width)
    return mask.astype(np.float32)


def run(runner: JobRunner, method: str, image: np.ndarray, mask: np.ndarray) -> float | str:
    request = JobRequest(InpaintParams(method, feather=4), image, mask=mask)
    start = time.perf_counter()
    out = list(runner.run(request))[-1]
    seconds = time.perf_counter() - start
    if isinstance(out, JobFailed):
        return out.message
    assert isinstance(out, JobFinished)
    untouched = grow_and_feather(mask, 0, 4) == 0
    assert np.array_equal(out.image[untouched], image[untouched]), "pixels outside changed"
    return seconds


def main() -> int:
    methods = [m.id for m in all_models("inpaint")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(methods))
    args = parser.parse_args()
    threads = configure_cpu_threads(EngineConfig.from_environment().cpu_threads)
    cases = [(1024, 0.15, 3), (4096, 0.05, 4)]
    inputs = {
        size: (photo(size), stroke_mask(size, cov, regions, seed=size))
        for size, cov, regions in cases
    }
    runner = JobRunner()
    small_image, small_mask = inputs[1024]
    print(
        f"torch threads {threads}; masks: "
        + ", ".join(f"{s}x{s} {inputs[s][1].mean() * 100:.1f} %" for s, _, _ in cases)
    )
    print(f"{'method':<16} {'1024² 15 %':>12} {'4096² 5 %':>12}   target")
    for method in args.methods.split(","):
        run(runner, method, small_image[:256, :256], small_mask[:256, :256])  # load + warm up
        cells = []
        for size, _, _ in cases:
            result = run(runner, method, *inputs[size])
            cells.append(f"{result:>11.2f}s" if isinstance(result, float) else f"{'failed':>12}")
            if not isinstance(result, float):
                print(f"  {method} at {size}: {result}")
        target = TARGETS.get(method)
        goal = f"< {target[0]:g} s / < {target[1]:g} s" if target else ""
        print(f"{method:<16} {cells[0]} {cells[1]}   {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
