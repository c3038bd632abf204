"""Stable Diffusion speed: seconds per denoising step at 512x512 through Studio against a plain
``diffusers`` StableDiffusionPipeline with its defaults (fp32), one table from one run.

Both run the same true-size random-initialised SD 1.5 networks, built from the SD 1.5 configs
Studio bundles (UNet 860 M, VAE 84 M, CLIP text encoder 123 M parameters; speed does not depend
on the weights' values). A step is one UNet call on 64x64 latents, batch 2 (classifier-free
guidance, as the pipelines run it), plus the sampler's arithmetic. Studio's path is the engine's:
the pipeline prepared by :func:`studio.models.sd.speed.prepare_pipeline` in the precisions the
tuner measured (once per machine; remembered in a tuning file in the data cache) and run by
``SDBackend``. Also the VAE decode at 512x512, the text encoder (prompt + negative) and the peak
resident memory of each path. On the CPU, and on CUDA when there is one.

    python benchmarks/diffusion.py [--warmup 2] [--steps 3] [--threads N] [--retune]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
NEGATIVE = "blurry"
GUIDANCE = 5.0

#: the tiny networks of the smoke test (same structure, a few MB)
TINY = {
    "unet": {
        "block_out_channels": [32, 64],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "layers_per_block": 1,
        "sample_size": 8,
    },
    "vae": {
        "block_out_channels": [32, 64],
        "down_block_types": ["DownEncoderBlock2D"] * 2,
        "up_block_types": ["UpDecoderBlock2D"] * 2,
        "layers_per_block": 1,
        "sample_size": 64,
    },
    "text_encoder": {"num_hidden_layers": 1, "intermediate_size": 64},
}


@dataclass(frozen=True)
class Row:
    """One path's numbers; seconds are the median of the timed runs."""

    device: str
    path: str
    step_s: float
    vae_decode_s: float
    text_s: float
    peak_bytes: int


def sd15_pipeline(tiny: bool = False, seed: int = 0) -> Any:
    """A random-initialised StableDiffusionPipeline of SD 1.5's configs (``tiny``: the same
    structure with a few channels), fp32 on the CPU, with diffusers' default scheduler."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from studio.models.sd.loading import CONFIGS
    from studio.models.sd.tokenizer import clip_tokenizer

    folder = CONFIGS / "sd15"
    over = TINY if tiny else {}
    with torch.device("meta"):  # shapes only; filled below (much faster than default init)
        unet_config = {**UNet2DConditionModel.load_config(folder / "unet"), **over.get("unet", {})}
        unet = UNet2DConditionModel.from_config(unet_config)
        vae_config = {**AutoencoderKL.load_config(folder / "vae"), **over.get("vae", {})}
        vae = AutoencoderKL.from_config(vae_config)
        text_config = CLIPTextConfig.from_pretrained(folder / "text_encoder")
        for key, value in over.get("text_encoder", {}).items():
            setattr(text_config, key, value)
        text = CLIPTextModel(text_config)
    g = torch.Generator().manual_seed(seed)
    for module in (unet, vae, text):
        _fill_random(module, g)
    return StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text.eval(),
        tokenizer=clip_tokenizer(),
        unet=unet.eval(),
        scheduler=_default_scheduler(folder),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _default_scheduler(folder: Path) -> Any:
    """The scheduler the SD 1.5 release names (PNDM), as a plain pipeline would have it."""
    import diffusers

    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return getattr(diffusers, config["_class_name"]).from_config(config)


def _fill_random(module: torch.nn.Module, g: torch.Generator) -> None:
    """Zero biases, unit norm scales, other weights normal with std 1/sqrt(fan-in), so the
    activations stay finite and of ordinary size through every layer."""
    module.to_empty(device="cpu")
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.ndim == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 1.0 / max(1, p[0].numel()) ** 0.5, generator=g)
        for name, b in module.named_buffers():
            if name.endswith("position_ids"):
                b.copy_(torch.arange(b.shape[-1]).expand_as(b))
            elif b.is_floating_point():
                b.zero_()


class PeakMemory:
    """Peak resident memory (CPU: RSS sampled every 5 ms) or peak allocated CUDA memory while
    the ``with`` block runs."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def diffusers_step_seconds(pipe: Any, size: int, warmup: int, timed: int) -> list[float]:
    """Seconds of each timed step of a plain ``pipe(...)`` call (its own loop and scheduler),
    the first ``warmup`` steps left out (the first also encodes the prompt)."""
    device = pipe.unet.device
    stamps: list[float] = []

    def on_step(_pipe: Any, _i: int, _t: Any, kwargs: dict) -> dict:
        _sync(device)
        stamps.append(time.perf_counter())
        return kwargs

    _sync(device)
    start = time.perf_counter()
    pipe(
        PROMPT,
        negative_prompt=NEGATIVE,
        height=size,
        width=size,
        num_inference_steps=warmup + timed,
        guidance_scale=GUIDANCE,
        output_type="latent",
        callback_on_step_end=on_step,
    )
    times = [b - a for a, b in zip([start, *stamps], stamps, strict=False)]
    return times[warmup:]


def studio_step_seconds(pipe: Any, size: int, warmup: int, timed: int) -> list[float]:
    """Seconds of each timed step of Studio's backend (the engine's path), the first
    ``warmup`` steps left out; the run is closed after the last step (no decode)."""
    from studio.models.diffusion_api import DenoiseRequest
    from studio.models.sd.backend import SDBackend
    from studio.models.sd.model import SDFamily, SDModel

    device = pipe.unet.device
    backend = SDBackend(SDModel(SDFamily.SD1, pipe, Path("random-sd15")))
    request = DenoiseRequest(
        prompt=PROMPT,
        negative=NEGATIVE,
        steps=warmup + timed,
        guidance=GUIDANCE,
        width=size,
        height=size,
    )
    run = backend.denoise(request)
    times: list[float] = []
    try:
        for _ in range(warmup + timed):
            _sync(device)
            start = time.perf_counter()
            next(run)
            _sync(device)
            times.append(time.perf_counter() - start)
    finally:
        run.close()
    return times[warmup:]


def vae_decode_seconds(pipe: Any, size: int, repeats: int) -> float:
    """Median seconds to decode one ``size``² image (after one warm-up decode)."""
    vae = pipe.vae
    param = next(vae.parameters())
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    z = torch.randn(1, vae.config.latent_channels, size // factor, size // factor)
    z = z.to(param.device, param.dtype)
    return _timed(lambda: vae.decode(z, return_dict=False), param.device, repeats)


def text_encoder_seconds(pipe: Any, repeats: int) -> float:
    """Median seconds to encode the prompt and the negative prompt (after one warm-up)."""
    device = pipe.text_encoder.device

    def encode() -> Any:
        return pipe.encode_prompt(PROMPT, device, 1, True, NEGATIVE)

    return _timed(encode, device, repeats)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if i:
                times.append(time.perf_counter() - start)
    return _median(times)


def measure_path(
    device_label: str, path: str, pipe: Any, size: int, warmup: int, timed: int, studio: bool
) -> Row:
    device = pipe.unet.device
    steps = studio_step_seconds if studio else diffusers_step_seconds
    print(f"{device_label}: measuring {path}", file=sys.stderr, flush=True)
    repeats = max(1, timed // 2)
    with PeakMemory(device) as peak:
        with torch.inference_mode():
            step = _median(steps(pipe, size, warmup, timed))
        vae = vae_decode_seconds(pipe, size, repeats)
        text = text_encoder_seconds(pipe, repeats)
    return Row(device_label, path, step, vae, text, peak.peak)


def studio_prepare(
    pipe: Any,
    device: torch.device,
    tuning_file: Path | None,
    precision: str = "auto",
    probe: tuple[int, int] = (64, 64),
) -> str:
    """Prepare ``pipe`` the way the engine does (the UNet's precision measured on ``probe``
    latents under "auto"); returns what the tuner chose and measured."""
    from studio.engine.config import EngineConfig
    from studio.engine.device import describe
    from studio.engine.tasks.sd_tuning import tuned_pipeline

    config = EngineConfig(device=str(device), precision=precision, tuning_file=tuning_file)
    started = time.perf_counter()
    tuning = yield_all(tuned_pipeline(config, describe(device), pipe, lambda: None, probe))
    seconds = time.perf_counter() - started
    lines = [f"  chosen: {tuning.summary()} (tuning took {seconds:.1f} s)"]
    for part, result in (("UNet", tuning.unet), ("VAE", tuning.vae)):
        for m in result.measurements:
            lines.append(
                f"    {part} {m.variant.label}: {m.seconds:.2f} s, error mean {m.mean_error:.4f}"
                f" max {m.max_error:.4f}"
            )
    return "\n".join(lines)


def yield_all(gen: Any) -> Any:
    """Drain a generator and return its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def run(
    devices: list[torch.device],
    *,
    tiny: bool = False,
    size: int = 512,
    warmup: int = 2,
    timed: int = 3,
    tuning_file: Path | None = None,
    precision: str = "auto",
    report: Callable[[str], None] = print,
) -> list[Row]:
    """Both paths on each device; one table row per (device, path)."""
    rows: list[Row] = []
    for device in devices:
        label = "CPU" if device.type == "cpu" else torch.cuda.get_device_name(device)
        pipe = sd15_pipeline(tiny=tiny).to(device)
        pipe.set_progress_bar_config(disable=True)
        rows.append(
            measure_path(label, "diffusers (defaults, fp32)", pipe, size, warmup, timed, False)
        )
        probe = (size // 8, size // 8)
        report(studio_prepare(pipe, device, tuning_file, precision, probe))
        dtype = str(next(pipe.unet.parameters()).dtype).removeprefix("torch.")
        rows.append(measure_path(label, f"Studio (UNet {dtype})", pipe, size, warmup, timed, True))
        del pipe
    return rows


def table(rows: list[Row], size: int = 512) -> str:
    head = (
        f"{'device':<10} {'path':<28} {'s/step':>8} {f'VAE {size}':>8} {'text':>7} {'peak RSS':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.device[:10]:<10} {r.path:<28} {r.step_s:>8.2f} {r.vae_decode_s:>8.2f}"
            f" {r.text_s:>7.3f} {r.peak_bytes / 2**30:>7.2f} G"
        )
    by = {(r.device, r.path.split()[0]): r for r in rows}
    for device in dict.fromkeys(r.device for r in rows):
        base, ours = by.get((device, "diffusers")), by.get((device, "Studio"))
        if base and ours:
            lines.append(
                f"{device}: Studio {base.step_s / ours.step_s:.2f}x faster per step"
                f" (VAE decode {base.vae_decode_s / ours.vae_decode_s:.2f}x)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from studio.engine.device import configure_cpu_threads
    from studio.paths import data_cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=2, help="steps left untimed (default 2)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tiny", action="store_true", help="tiny networks (a smoke test)")
    parser.add_argument("--retune", action="store_true", help="measure the precisions again")
    args = parser.parse_args(argv)
    threads = configure_cpu_threads(args.threads)
    tuning_file = data_cache_dir() / "benchmarks" / "sd-tuning.json"
    if args.retune:
        tuning_file.unlink(missing_ok=True)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    else:
        print("no CUDA device: GPU rows skipped")
    print(
        f"SD 1.5 {'tiny' if args.tiny else 'true-size'} random weights, {args.size}x{args.size},"
        f" CFG batch 2, {args.warmup} warm-up + {args.steps} timed steps, {threads} CPU threads,"
        f" load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}"
    )
    rows = run(
        devices,
        tiny=args.tiny,
        size=args.size,
        warmup=args.warmup,
        timed=args.steps,
        tuning_file=tuning_file,
    )
    print(table(rows, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
