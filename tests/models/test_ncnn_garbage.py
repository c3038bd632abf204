"""The ncnn importer refuses garbage with one clear message: known bad inputs, then a seeded fuzz
of a valid tiny SRVGG pair (a few hundred mutations) with no traceback and no hang."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.errors import StudioError
from studio.models.ncnn import TAG_FP16, NcnnFormatError, import_ncnn

NF, SCALE = 4, 2


def _tiny_srvgg() -> tuple[str, bytes]:
    """A valid ``.param`` text and ``.bin`` for SRVGGNetCompact(3, 3, nf=4, num_conv=1, x2)."""
    rng = np.random.default_rng(0)
    lines, data = [], bytearray()

    def conv(name: str, bottom: str, top: str, cin: int, cout: int) -> None:
        w = (rng.standard_normal((cout, cin, 3, 3)) * 0.1).astype("<f2").tobytes()
        data.extend(struct.pack("<I", TAG_FP16) + w + b"\0" * (-len(w) % 4))
        data.extend((rng.standard_normal(cout) * 0.1).astype("<f4").tobytes())
        lines.append(
            f"Convolution {name} 1 1 {bottom} {top} 0={cout} 1=3 4=1 5=1 6={cout * cin * 9}"
        )

    def prelu(name: str, bottom: str, top: str) -> None:
        data.extend(np.full(NF, 0.25, "<f4").tobytes())
        lines.append(f"PReLU {name} 1 1 {bottom} {top} 0={NF}")

    lines.append("Input in 0 1 data")
    lines.append("Split split 1 2 data d0 d1")
    conv("c0", "d0", "b0", 3, NF)
    prelu("p1", "b0", "b1")
    conv("c2", "b1", "b2", NF, NF)
    prelu("p3", "b2", "b3")
    conv("c4", "b3", "b4", NF, 3 * SCALE * SCALE)
    lines.append(f"PixelShuffle ps 1 1 b4 sh 0={SCALE}")
    lines.append(f"Interp up 1 1 d1 base 0=1 1={SCALE:e} 2={SCALE:e}")
    lines.append("BinaryOp add 2 1 sh base output")
    text = "\n".join(["7767517", f"{len(lines)} 12", *lines]) + "\n"
    return text, bytes(data)


PARAM, BIN = _tiny_srvgg()


@pytest.fixture
def pair(tmp_path: Path):
    def write(param: bytes | str = PARAM, weights: bytes = BIN) -> tuple[Path, Path, Path]:
        p, b = tmp_path / "m.param", tmp_path / "m.bin"
        p.write_bytes(param.encode() if isinstance(param, str) else param)
        b.write_bytes(weights)
        return p, b, tmp_path / "out.safetensors"

    return write


def test_the_tiny_pair_is_valid(pair) -> None:
    summary = import_ncnn(*pair())
    assert (summary["arch"], summary["scale"]) == ("srvgg", SCALE)


def _edit(line_start: str, old: str, new: str) -> str:
    lines = PARAM.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(line_start))
    assert old in lines[i]
    lines[i] = lines[i].replace(old, new, 1)
    return "\n".join(lines) + "\n"


def _without(line_start: str) -> str:
    return "\n".join(ln for ln in PARAM.splitlines() if not ln.startswith(line_start)) + "\n"


GARBAGE = {
    "binary param": (b"\x00\xff\xfe" + bytes(range(256)) * 4, BIN, "not a text ncnn .param"),
    "float overflow": (_edit("Convolution c0", "0=4", "0=1e999"), BIN, "finite"),
    "int overflow": (_edit("Convolution c0", "6=108", "6=99999999999"), BIN, "32 bits"),
    "absurd weight count": (_edit("Convolution c0", "6=108", "6=2000000000"), BIN, "truncated"),
    "negative out channels": (_edit("Convolution c0", "0=4", "0=-4"), BIN, "parameter 0=-4"),
    "negative blob count": (_edit("Split", "1 2", "1 -2"), BIN, "cannot parse line"),
    "list for a number": (_edit("Convolution c0", "0=4", "-23300=1,4"), BIN, "parameter 0"),
    "array count too big": (_edit("Interp", "0=1", "-23310=999,1"), BIN, "does not hold"),
    "zero shuffle": (_edit("PixelShuffle", "0=2", "0=0"), BIN, "parameter 0=0"),
    "missing layer": (_without("PReLU p3"), BIN, "declares 10 layers but lists 9"),
    "too many declared": (PARAM.replace("\n10 12\n", "\n11 12\n"), BIN, "declares 11 layers"),
    "truncated bin": (PARAM, BIN[:-7], "truncated"),
    "empty bin": (PARAM, b"", "truncated"),
    "bias count differs": (_edit("Convolution c2", "0=4", "0=2"), BIN, "does not match"),
    "empty param": (b"", BIN, "not a text ncnn"),
    "magic only": ("7767517\n", BIN, "layer_count"),
}


@pytest.mark.parametrize("case", list(GARBAGE))
def test_garbage_is_refused_with_one_clear_line(pair, case: str) -> None:
    param, weights, fragment = GARBAGE[case]
    with pytest.raises(NcnnFormatError) as info:
        import_ncnn(*pair(param, weights))
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def test_the_cli_reports_a_binary_param_in_one_line(pair, capsys) -> None:
    p, b, out = pair(b"\x89\xff" * 100)
    assert main(["models", "import-ncnn", str(p), str(b), str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("studio: error: ") and "\n" not in err and "not a text" in err, err
    assert not out.exists()


def _mutate_param(text: str, rng: np.random.Generator) -> bytes:
    """One random edit of the kind a damaged or hand-edited file has."""
    lines = text.splitlines()
    kind = int(rng.integers(0, 8))
    if kind == 0:  # a number replaced by an extreme or malformed one
        i = int(rng.integers(1, len(lines)))
        tok = lines[i].split()
        j = int(rng.integers(0, len(tok)))
        values = ["1e999", "-1", "0", "2147483648", "99999999", "nan", "1.5", "-23310=5,1", ""]
        value = values[int(rng.integers(0, len(values)))]
        tok[j] = tok[j].split("=")[0] + "=" + value if "=" in tok[j] else value
        lines[i] = " ".join(tok)
    elif kind == 1:  # a line lost
        del lines[int(rng.integers(1, len(lines)))]
    elif kind == 2:  # a line repeated
        i = int(rng.integers(1, len(lines)))
        lines.insert(i, lines[i])
    elif kind == 3:  # two layers swapped
        i, j = rng.integers(2, len(lines), 2)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 4:  # a layer turned into another type
        i = int(rng.integers(2, len(lines)))
        types = ["Convolution", "Deconvolution", "PReLU", "Interp", "PixelShuffle", "Magic"]
        lines[i] = types[int(rng.integers(0, len(types)))] + " " + lines[i].split(" ", 1)[1]
    elif kind == 5:  # an extra key
        i = int(rng.integers(2, len(lines)))
        lines[i] += f" {int(rng.integers(-23320, 20))}={rng.choice(['3', '1e38', '2,1,2'])}"
    raw = ("\n".join(lines) + "\n").encode()
    if kind == 6:  # truncated
        raw = raw[: int(rng.integers(0, len(raw)))]
    elif kind == 7:  # bit flips, which may make the text invalid UTF-8
        buf = bytearray(raw)
        for _ in range(int(rng.integers(1, 6))):
            buf[int(rng.integers(0, len(buf)))] ^= 1 << int(rng.integers(0, 8))
        raw = bytes(buf)
    return raw


def _mutate_bin(data: bytes, rng: np.random.Generator) -> bytes:
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return data
    if kind == 1:
        return data[: int(rng.integers(0, len(data)))]
    if kind == 2:
        return data + bytes(int(rng.integers(1, 64)))
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        buf[int(rng.integers(0, 8))] = int(rng.integers(0, 256))  # the first tag
    return bytes(buf)


def test_fuzzed_pairs_never_raise_a_traceback_or_hang(pair) -> None:
    rng = np.random.default_rng(20240611)
    outcomes = {"imported": 0, "refused": 0}
    slowest = 0.0
    start = time.perf_counter()
    for case in range(300):
        both = rng.random() < 0.2
        param = _mutate_param(PARAM, rng)
        weights = _mutate_bin(BIN, rng) if both else BIN
        t0 = time.perf_counter()
        try:
            import_ncnn(*pair(param, weights))
            outcomes["imported"] += 1
        except StudioError as exc:
            assert "\n" not in str(exc), f"case {case}: a multi-line message: {exc}"
            outcomes["refused"] += 1
        except Exception as exc:  # the failure this test exists for
            raise AssertionError(f"case {case}: {type(exc).__name__}: {exc}\n{param!r}") from exc
        slowest = max(slowest, time.perf_counter() - t0)
    assert outcomes["refused"] > 150, outcomes
    assert slowest < 2.0 and time.perf_counter() - start < 20, f"slowest case {slowest:.2f} s"
