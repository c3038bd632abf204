"""Text-to-image speed of Studio's own model: seconds for one 64x64 image at 20 steps with
classifier-free guidance, and the time to the first preview, fp32 against bf16 autocast in the
same run (targets on a 2-core CPU: under 2 s and under 0.5 s).

Each repetition uses a prompt not seen before, so the time to the first preview includes
encoding the prompt and the negative prompt with MiniLM (the model and encoder are loaded once,
before timing, as the engine's model cache would have them). Best of ``--reps``.

    python benchmarks/generate.py [--weights checkpoints/studio-text2img.safetensors]
        [--threads 2] [--steps 20] [--sampler dpm++] [--reps 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from studio.models.diffusion_api import DenoiseRequest
from studio.models.text_diffusion import TextDiffusion
from studio.paths import checkpoints_dir

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def one_run(backend: TextDiffusion, request: DenoiseRequest) -> tuple[float, float, float]:
    """``(seconds to the first preview, seconds to the images, CPU seconds of this process)``."""
    cpu0 = time.process_time()
    start = time.perf_counter()
    first = None
    gen = backend.denoise(request)
    while True:
        try:
            next(gen)
        except StopIteration:
            break
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (first if first is not None else total), total, time.process_time() - cpu0


def measure(backend: TextDiffusion, args: argparse.Namespace, tag: str) -> dict:
    warm = DenoiseRequest(prompt="warm", steps=2, guidance=args.guidance, sampler=args.sampler)
    one_run(backend, warm)
    firsts, totals, cpus = [], [], []
    for rep in range(args.reps):
        request = DenoiseRequest(
            prompt=f"a red apple number {rep} {tag}",
            negative=f"blurry {rep} {tag}",
            seed=rep,
            steps=args.steps,
            guidance=args.guidance,
            sampler=args.sampler,
        )
        first, total, cpu = one_run(backend, request)
        firsts.append(first)
        totals.append(total)
        cpus.append(cpu)
    return {"first": min(firsts), "total": min(totals), "cpu": min(cpus)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument(
        "--weights", type=Path, default=checkpoints_dir() / "studio-text2img.safetensors"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--sampler", default="dpm++")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtypes", default="fp32,bf16")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    cpu = torch.device(args.device).type == "cpu"
    print(
        f"studio-text2img, 64x64, {args.steps} steps, guidance {args.guidance}, {args.sampler}, "
        f"{args.device}{f' {args.threads} threads' if cpu else ''}, best of {args.reps}"
    )
    # CPU seconds: what one idle core would take; wall time grows when others share the CPU
    print("| precision | one image (s) | first preview (s) | CPU seconds per image |")
    print("|---|---|---|---|")
    shared = None
    for name in args.dtypes.split(","):
        backend = TextDiffusion.load(args.weights, args.device, DTYPES[name], encoder=shared)
        shared = backend.encoder  # loaded once, outside the timings
        r = measure(backend, args, name)
        print(f"| {name} | {r['total']:.3f} | {r['first']:.3f} | {r['cpu']:.3f} |")


if __name__ == "__main__":
    main()
