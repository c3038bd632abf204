"""Single-file Stable Diffusion loading offline, at true size: writes a random-initialised
SD 1.5 checkpoint in the original single-file key layout (what artists download), then loads it
through Studio with every socket connection refused and the Hugging Face hub switched off.

    .venv/bin/python benchmarks/sd_single_file.py [--out FILE] [--dtype fp16|fp32] [--keep]

The file goes to the data cache (``$STUDIO_CACHE``, never the repository) and is removed after
the run unless ``--keep``. Prints the file size, the time to write and to load, the peak memory
and the parts' parameter counts (SD 1.5: UNet 859.5 M, VAE 83.7 M, text encoder 123.1 M).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from studio.models.sd.loading import CONFIGS, load_sd_model
from studio.models.sd.original_layout import random_sd1_checkpoint
from studio.paths import data_cache_dir


def _refuse(*args: object, **kwargs: object) -> None:
    raise RuntimeError(f"network access attempted: {args!r}")


def block_network() -> None:
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
    socket.create_connection = _refuse  # type: ignore[assignment]


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=data_cache_dir() / "sd" / "random-sd15.safetensors"
    )
    parser.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument("--keep", action="store_true", help="keep the written checkpoint")
    args = parser.parse_args(argv)
    block_network()
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32

    from safetensors.torch import save_file

    start = time.perf_counter()
    state = random_sd1_checkpoint(CONFIGS / "sd15", dtype=dtype)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={"modelspec.license": "random weights, no licence"})
    del state
    written = time.perf_counter() - start
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 2**30:.2f} GiB, {args.dtype}) in {written:.1f} s")

    start = time.perf_counter()
    model = load_sd_model(args.out, device="cpu", dtype=torch.float32)
    loaded = time.perf_counter() - start
    pipe = model.pipe
    counts = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in ("unet", "vae", "text_encoder")
    }
    print(f"loaded offline in {loaded:.1f} s: {type(pipe).__name__}, family {model.family.value}")
    print("  " + ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in counts.items()))
    with torch.inference_mode():
        ids = pipe.tokenizer("a lighthouse at dusk", return_tensors="pt").input_ids
        hidden = pipe.text_encoder(ids).last_hidden_state
        noise = pipe.unet(torch.randn(1, 4, 8, 8), 500, encoder_hidden_states=hidden).sample
    finite = bool(noise.isfinite().all())
    print(f"  one UNet call on an 8x8 latent: {tuple(noise.shape)}, finite {finite}")
    print(f"peak memory (RSS) {peak_rss_gib():.1f} GiB; licence: {model.licence!r}")
    if not args.keep:
        args.out.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
