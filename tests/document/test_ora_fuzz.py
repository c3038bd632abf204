"""Seeded mutations of a real project: every one opens or fails with one BadInputError, fast,
and nothing is written anywhere."""

from __future__ import annotations

import io
import os
import random
import time
import zipfile
from pathlib import Path

import numpy as np

from studio.document.ora import open_project, save_project
from studio.errors import BadInputError
from tests.document.test_ora import layered_document

MUTATIONS = 400


def _rezip(data: bytes, edit) -> bytes:
    """Rewrite the archive with ``edit(name, bytes) -> (name, bytes) | None`` per entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            result = edit(info.filename, src.read(info))
            if result is not None:
                dst.writestr(result[0], result[1], info.compress_type)
    return out.getvalue()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:  # bit flips anywhere
        buf = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if kind == 1:  # truncation
        return data[: rng.randrange(len(data))]
    if kind == 2:  # edited stack.xml: a slice cut, duplicated or replaced

        def edit_stack(name: str, raw: bytes):
            if name != "stack.xml":
                return name, raw
            i, j = sorted(rng.randrange(len(raw)) for _ in range(2))
            junk = rng.choice([b"", raw[i:j] * 3, b'"', b"<", b"../../x.png", b"-1e999"])
            return name, raw[:i] + junk + raw[j:]

        return _rezip(data, edit_stack)
    if kind == 3:  # attribute values swapped for hostile ones

        def edit_attrs(name: str, raw: bytes):
            if name != "stack.xml":
                return name, raw
            text = raw.decode()
            key = rng.choice(["x=", "y=", "w=", "h=", "opacity=", "src=", "visibility="])
            value = rng.choice(['"nan"', '"-99999999"', '"/etc/passwd"', '"1e308"', '""', '"0"'])
            start = text.find(key)
            if start < 0:
                return name, raw
            end = text.find('"', start + len(key) + 1)
            return name, (text[:start] + key + value + text[end + 1 :]).encode()

        return _rezip(data, edit_attrs)
    if kind == 4:  # renamed or dropped entries
        victim = rng.choice(zipfile.ZipFile(io.BytesIO(data)).namelist())
        new = rng.choice([None, "../" + victim, victim.upper(), "/" + victim])
        return _rezip(
            data, lambda n, r: (n, r) if n != victim else (None if new is None else (new, r))
        )

    # a layer PNG with flipped bits inside
    def edit_png(name: str, raw: bytes):
        if not name.startswith("data/") or len(raw) < 40:
            return name, raw
        buf = bytearray(raw)
        i = rng.randrange(8, len(buf))
        buf[i] ^= 0xFF
        return name, bytes(buf)

    return _rezip(data, edit_png)


def test_mutated_projects_fail_cleanly_without_writing(tmp_path: Path) -> None:
    source = tmp_path / "src.ora"
    save_project(layered_document(), source)
    data = source.read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    rng = random.Random(1234)
    outcomes = {"opened": 0, "refused": 0}
    slowest = 0.0
    for i in range(MUTATIONS):
        path = work / f"m{i}.ora"
        path.write_bytes(_mutate(data, rng))
        listing = sorted(os.listdir(tmp_path)), sorted(os.listdir(work))
        start = time.perf_counter()
        try:
            doc = open_project(path).document
        except BadInputError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            assert all(layer.pixels.shape == (90, 120, 4) for layer in doc.layers)
            assert np.isfinite(doc.mask).all()
            outcomes["opened"] += 1
        slowest = max(slowest, time.perf_counter() - start)
        assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(work))) == listing
        path.unlink()
    assert outcomes["refused"] > MUTATIONS // 4 and outcomes["opened"] > 10, outcomes
    assert slowest < 2.0, f"one mutation took {slowest:.2f} s to open or refuse"
