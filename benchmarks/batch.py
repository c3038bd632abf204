"""Batch throughput: images per second for a folder of small images, four ways, one table.

``studio upscale`` once per file (today's one-process-per-file CLI, which loads the model every
time), ``studio batch`` with 1 and 2 worker processes, and ``studio batch --ray`` on a local
two-worker Ray instance. "seconds" is the whole command's wall time (start-up and model loading
included); "running" is the pace once started, from the first output file's modification time
to the last's. Every output is checked byte-identical to the one-worker batch's. Ray's
overhead against the local two-worker run is split into start-up and cost per image.

Every row runs with the same ``--precision`` (default bf16, what "auto" picks on a CPU with
AMX): left on "auto", each worker measures for its own thread count and may pick differently,
which would compare different arithmetic. The inputs are ``--count`` crops of scikit-image's
bundled photographs and the bundled sample, resized to ``--size`` pixels square. One process
per file is timed on the first ``--per-process`` files only (each pays a full Python start).

    python benchmarks/batch.py [--count 100] [--size 128] [--per-process 10] [--precision bf16]
                               [--work DIR]

A private ``STUDIO_HOME`` under the work folder holds the tuning file; a first, untimed
``studio upscale`` warms the disk caches.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

MODEL = "studio-photo-x2"
ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")  # bundled


def make_inputs(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` distinct RGB crops, ``size`` pixels square, as PNG files."""
    folder.mkdir(parents=True)
    photos = [getattr(data, name)() for name in SOURCES]
    photos.append(np.asarray(Image.open(ROOT / "resources" / "sample.jpg").convert("RGB")))
    rng = np.random.default_rng(16)
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(photo[y : y + side, x : x + side, :3])
        path = folder / f"img-{i:03d}.png"
        crop.resize((size, size), Image.LANCZOS).save(path)
        paths.append(path)
    return paths


def studio(*args: str, env: dict[str, str]) -> float:
    """Seconds one ``studio`` command takes; its failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "studio", *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"studio {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.png")}


def output_span(folder: Path) -> float:
    """Seconds from the first output written to the last: the batch's pace once running."""
    times = sorted(p.stat().st_mtime for p in folder.glob("*.png"))
    return times[-1] - times[0] if len(times) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--per-process", type=int, default=10, help="files timed one process each")
    ap.add_argument("--precision", default="bf16", help="the same for every row (default bf16)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: temporary)")
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="studio-batch-bench-"))
    shutil.rmtree(work / "in", ignore_errors=True)
    inputs = make_inputs(work / "in", args.count, args.size)
    env = {**os.environ, "STUDIO_HOME": str(work / "home")}
    warm = work / "warm.png"
    studio("upscale", str(inputs[0]), str(warm), "--model", MODEL, env=env)  # untimed warm-up

    model = ["--model", MODEL, "--precision", args.precision]
    rows: list[tuple[str, int, float]] = []
    outputs: dict[str, dict[str, str]] = {}
    spans: dict[str, float] = {}
    per_process = work / "out-per-process"
    shutil.rmtree(per_process, ignore_errors=True)
    per_process.mkdir()
    start = time.perf_counter()
    for path in inputs[: args.per_process]:
        studio("upscale", str(path), str(per_process / path.name), *model, env=env)
    rows.append(
        ("studio upscale, one process per file", args.per_process, time.perf_counter() - start)
    )
    outputs[rows[-1][0]] = digests(per_process)

    runs = {
        "studio batch --workers 1": ["--workers", "1"],
        "studio batch --workers 2": ["--workers", "2"],
        "studio batch --ray --workers 2 (local Ray)": ["--ray", "--workers", "2"],
    }
    for name, extra in runs.items():
        out = work / ("out" + "-".join(extra).replace("--", "-"))
        shutil.rmtree(out, ignore_errors=True)
        command = ["batch", "upscale", str(work / "in"), str(out), *model, "--quiet", *extra]
        rows.append((name, args.count, studio(*command, env=env)))
        outputs[name] = digests(out)
        spans[name] = output_span(out)

    reference = outputs["studio batch --workers 1"]
    print(
        f"{args.count} images {args.size}x{args.size} -> x2 with {MODEL} "
        f"(--precision {args.precision}), {os.cpu_count()} cores"
    )
    print(f"{'how':<44} {'images':>6} {'seconds':>8} {'images/s':>9} {'running':>8}  identical")
    for name, n, seconds in rows:
        same = all(reference.get(k) == v for k, v in outputs[name].items())
        running = f"{(n - 1) / spans[name]:.2f}" if spans.get(name) else ""
        print(
            f"{name:<44} {n:>6} {seconds:>8.1f} {n / seconds:>9.2f} {running:>8}  "
            f"{'yes' if same else 'NO'}"
        )
    local, ray = "studio batch --workers 2", "studio batch --ray --workers 2 (local Ray)"
    total = {name: seconds for name, _, seconds in rows}
    n = args.count
    per_image = (spans[ray] - spans[local]) / (n - 1)
    start_up = (total[ray] - spans[ray]) - (total[local] - spans[local])
    print(
        f"Ray vs 2 local workers: {(total[ray] - total[local]) / n * 1000:.0f} ms per image in "
        f"all = {start_up:.1f} s more start-up and {per_image * 1000:.0f} ms per image running"
    )
    print("running: images/s from the first output to the last (their modification times)")


if __name__ == "__main__":
    main()
