"""Settings values are checked by type, finiteness and range; a damaged file never raises.

The editor side (the window starts and says what was reset) is in tests/ui/test_settings.py.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from studio.settings import Settings
from studio.settings_validation import (
    INT_RANGE,
    invalid_fields,
    limits,
    unsupported_fields,
    validated,
)

DEFAULTS = Settings()


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "settings.json"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def assert_sound(s: Settings) -> None:
    """Every value has its default's type and is usable: finite, fits a Qt int, clean text.

    Written apart from the validator so that a validator bug cannot hide itself.
    """

    def check(value: Any, default: Any, name: str) -> None:
        if is_dataclass(default):
            assert type(value) is type(default), name
            for f in fields(default):
                check(getattr(value, f.name), getattr(default, f.name), f"{name}.{f.name}")
        elif isinstance(default, tuple):
            assert isinstance(value, tuple) and len(value) == len(default), name
            for i, (v, d) in enumerate(zip(value, default, strict=True)):
                check(v, d, f"{name}[{i}]")
        else:
            assert type(value) is type(default), f"{name}: {value!r}"
            if isinstance(value, int | float):
                assert math.isfinite(value) and INT_RANGE[0] <= value <= INT_RANGE[1], name
            if isinstance(value, str):
                assert "\x00" not in value and len(value) <= 4096, name
                value.encode("utf-8")

    for f in fields(Settings):
        check(getattr(s, f.name), getattr(DEFAULTS, f.name), f.name)
    assert invalid_fields(s) == [], "a loaded value fails its own field's limits"
    assert 0.05 <= s.mask_opacity <= 1.0 and 1 <= s.grow_px <= 500 and 1 <= s.feather_px <= 500
    for brush in (s.paint_brush, s.mask_brush):
        assert 1.0 <= brush.size <= 1000.0 and 0.0 <= brush.hardness <= 1.0
        assert 0.01 <= brush.opacity <= 1.0 and 0.02 <= brush.spacing <= 2.0
        assert all(0 <= c <= 255 for c in brush.color) and brush.erase is False
    assert all(0 <= c <= 255 for c in s.mask_color)


def test_every_field_is_checked_and_the_defaults_pass() -> None:
    assert unsupported_fields(Settings) == [], "add a check for this type to settings_validation"
    assert invalid_fields(DEFAULTS) == []


READ_ERRORS = {
    "deeply nested": ("[" * 100000, "settings.json could not be read (nested too deeply)"),
    "a list": ("[1, 2]", "settings.json holds no settings"),
    "a number": ("3", "settings.json holds no settings"),
    "invalid UTF-8": (b'{"grow_px": 12, "last_folder": "\xff\xfe"}', "(not UTF-8 text)"),
    "0 bytes": (b"", "settings.json could not be read (empty file)"),
    "truncated": ('{"grow_px": 12, "mask_opa', "could not be read (not JSON: "),
    "a 5000-digit number": ('{"grow_px": ' + "7" * 5000 + "}", "(not valid JSON)"),
    "over 1 MiB": ('{"last_folder": "' + "x" * (1 << 20) + '"}', "(larger than 1 MiB)"),
}


@pytest.mark.parametrize("content, note", READ_ERRORS.values(), ids=READ_ERRORS.keys())
def test_a_file_that_cannot_be_read_means_all_defaults_and_one_note(tmp_path, content, note):
    path = write(tmp_path, content)
    loaded = Settings.load(path)
    assert loaded == DEFAULTS
    assert loaded.load_note.startswith("Settings: ") and note in loaded.load_note
    assert loaded.load_note.count("using defaults") == 1
    if content:
        assert "kept as settings.json.bad" in loaded.load_note
        assert path.with_name("settings.json.bad").read_bytes() == path.read_bytes()


BAD_VALUES = {
    "NaN opacity": ('{"mask_opacity": NaN}', ["mask_opacity"]),
    "Infinity opacity": ('{"mask_opacity": Infinity, "feather_px": -Infinity}', None),
    "NaN brush size": ('{"paint_brush": {"size": NaN, "hardness": 0.25}}', None),
    "huge grow": ('{"grow_px": 1000000000000000000000000000000}', ["grow_px"]),
    "huge float": ('{"mask_opacity": 1e308, "mask_brush": {"size": 1e400}}', None),
    "huge int as float": ('{"mask_opacity": ' + "9" * 400 + "}", ["mask_opacity"]),
    "negative sizes": ('{"paint_brush": {"size": -5}, "grow_px": -1, "feather_px": 0}', None),
    "huge sizes": ('{"mask_brush": {"size": 100000.0, "spacing": 50}, "grow_px": 501}', None),
    "wrong types": (
        '{"grow_px": "12", "mask_color": "red", "result_mode": 3, "paint_brush": [1],'
        ' "mask_brush": {"color": [1, 2]}, "last_folder": ["a"], "mask_opacity": true,'
        ' "inpaint_method": {"id": 1}, "select_mode": null}',
        None,
    ),
    "bad strings": ('{"result_mode": "sideways", "last_folder": "a\\u0000b"}', None),
    "lone surrogate": ('{"last_folder": "\\ud800"}', ["last_folder"]),
    "erasing brush": ('{"paint_brush": {"erase": true}}', ["paint_brush.erase"]),
    "float for int": ('{"grow_px": 12.0, "mask_color": [1.0, 2, 3]}', ["mask_color", "grow_px"]),
}
EXPECTED_RESETS = {
    "Infinity opacity": ["mask_opacity", "feather_px"],
    "NaN brush size": ["paint_brush.size"],
    "huge float": ["mask_brush.size", "mask_opacity"],
    "negative sizes": ["paint_brush.size", "grow_px", "feather_px"],
    "huge sizes": ["mask_brush.size", "mask_brush.spacing", "grow_px"],
    "wrong types": [
        "paint_brush",
        "mask_brush.color",
        "mask_color",
        "mask_opacity",
        "result_mode",
        "select_mode",
        "grow_px",
        "last_folder",
        "inpaint_method",
    ],
    "bad strings": ["result_mode", "last_folder"],
}


@pytest.mark.parametrize("case", BAD_VALUES.keys())
def test_an_invalid_value_falls_back_to_its_default_and_is_named(tmp_path, case) -> None:
    text, resets = BAD_VALUES[case]
    resets = resets or EXPECTED_RESETS[case]
    loaded = Settings.load(write(tmp_path, text))
    assert_sound(loaded)
    for name in resets:
        outer, _, inner = name.partition(".")
        expected = getattr(DEFAULTS, outer)
        value = getattr(loaded, outer)
        if inner:
            expected, value = getattr(expected, inner), getattr(value, inner)
        assert value == expected, f"{name} kept {value!r}"
    shown = resets if len(resets) <= 6 else resets[:6]
    assert loaded.load_note == (
        f"Settings: reset {', '.join(shown)}"
        + (f" and {len(resets) - 6} more" if len(resets) > 6 else "")
        + " to defaults (invalid values in settings.json; the old file is kept as"
        " settings.json.bad)"
    )


def test_good_values_beside_bad_ones_are_kept(tmp_path) -> None:
    text = (
        '{"paint_brush": {"size": NaN, "hardness": 0.25, "color": [1, 2, 3]}, "grow_px": 12,'
        ' "mask_opacity": Infinity, "select_mode": "add", "mask_color": [0, 0, 255],'
        ' "last_folder": "/home/ärtist", "unknown_from_a_newer_version": 1}'
    )
    loaded = Settings.load(write(tmp_path, text))
    assert loaded.paint_brush.size == DEFAULTS.paint_brush.size
    assert loaded.paint_brush.hardness == 0.25 and loaded.paint_brush.color == (1, 2, 3)
    assert (loaded.grow_px, loaded.select_mode, loaded.mask_color) == (12, "add", (0, 0, 255))
    assert loaded.last_folder == "/home/ärtist"
    assert loaded.load_note.startswith("Settings: reset paint_brush.size, mask_opacity to")


def test_a_missing_or_valid_file_gives_no_note(tmp_path) -> None:
    path = tmp_path / "settings.json"
    assert Settings.load(path).load_note is None
    s = replace(DEFAULTS, grow_px=20)
    assert s.save(path)
    again = Settings.load(path)
    assert again == s and again.load_note is None
    assert not path.with_name("settings.json.bad").exists()


def test_saving_never_writes_nan_or_out_of_range_values(tmp_path) -> None:
    path = tmp_path / "settings.json"
    s = Settings()
    s.mask_opacity = float("nan")
    s.grow_px = 10**30
    s.paint_brush = replace(s.paint_brush, size=float("inf"), hardness=0.3)
    s.select_mode = "add"
    assert s.save(path)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} written to settings.json")

    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data["mask_opacity"] == DEFAULTS.mask_opacity and data["grow_px"] == DEFAULTS.grow_px
    assert data["paint_brush"]["size"] == DEFAULTS.paint_brush.size
    assert data["paint_brush"]["hardness"] == 0.3 and data["select_mode"] == "add"
    assert Settings.load(path).load_note is None


def test_fields_added_later_are_checked_without_edits(tmp_path) -> None:
    """A new field gets the default rule by its type; ``limits`` in its metadata narrows it."""

    @dataclass
    class Later(Settings):
        method: str = "studio-inpaint"
        count: int = 3
        ratio: float = 0.5
        strength: float = field(default=0.5, metadata=limits(lo=0.0, hi=1.0))
        pair: tuple[int, int] = (1, 2)
        names: list[str] = field(default_factory=list)
        maybe: str | None = None

    assert unsupported_fields(Later) == []
    bad = {
        "method": 7,
        "count": 2**40,
        "ratio": float("nan"),
        "strength": 1.5,
        "pair": [1, "2"],
        "names": ["ok", None],
        "maybe": 3,
    }
    loaded, rejected = validated(Later, bad)
    assert sorted(rejected) == sorted(bad)
    assert loaded == Later()
    good = {
        "method": "big-lama.safetensors",
        "count": -4,
        "ratio": 1e6,
        "strength": 1,
        "pair": [3, 4],
        "names": ["a", "b"],
        "maybe": None,
    }
    loaded, rejected = validated(Later, good)
    assert rejected == []
    assert (loaded.method, loaded.count, loaded.ratio, loaded.strength) == (
        "big-lama.safetensors",
        -4,
        1e6,
        1.0,
    )
    assert (loaded.pair, loaded.names, loaded.maybe) == ((3, 4), ["a", "b"], None)
    assert type(loaded.strength) is float
    path = write(tmp_path, json.dumps({"count": "x", "ratio": 2.5}))
    again = Later.load(path)
    assert (again.count, again.ratio) == (3, 2.5)
    assert "reset count to defaults" in again.load_note


# -- fuzzing -----------------------------------------------------------------------------------

EVIL = [
    float("nan"),
    float("inf"),
    float("-inf"),
    10**30,
    -(10**30),
    1e308,
    -1,
    0,
    2**31,
    "",
    "x" * 5000,
    "\ud800",
    "a\x00b",
    None,
    True,
    [],
    {},
    [1, 2, 3],
    [300, -1, 2],
    {"size": float("nan")},
    "DEEP",
]


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _leaves(v, (*path, i))
    return out


def _set(obj: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _mutate(rng: random.Random, original: bytes, data: dict) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # byte flips
        raw = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    if kind == 1:  # a write cut short
        return original[: rng.randrange(len(original))]
    tree = json.loads(original)
    paths = _leaves(tree)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        if kind == 2:  # NaN, Infinity, huge numbers, bad strings, deep nesting
            value = rng.choice(EVIL)
        elif kind == 3:  # another field's value: swapped types
            value = json.loads(json.dumps(_get(data, rng.choice(_leaves(data)))))
        else:  # a whole nested object where a value belongs, or the reverse
            value = rng.choice([json.loads(original), [json.loads(original)], 1.5, "paint_brush"])
        with contextlib.suppress(KeyError, IndexError, TypeError):
            _set(tree, path, value)
        paths = _leaves(tree)
    text = json.dumps(tree)
    depth = rng.choice([10, 900, 5000, 100000])
    return text.replace('"DEEP"', "[" * depth + "]" * depth).encode()


def _get(obj: Any, path: tuple) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def test_fuzzed_settings_files_always_load_to_sound_values(tmp_path) -> None:
    s = Settings()
    s.grow_px, s.mask_color, s.select_mode = 17, (10, 20, 30), "subtract"
    s.paint_brush = replace(s.paint_brush, size=55.5, color=(1, 2, 3))
    s.last_folder = "/tmp/ünïcode"
    path = tmp_path / "settings.json"
    assert s.save(path)
    original = path.read_bytes()
    data = json.loads(original)
    rng = random.Random(20240611)
    start = time.perf_counter()
    notes = 0
    for i in range(300):
        path.write_bytes(_mutate(rng, original, data))
        loaded = Settings.load(path)  # never raises
        assert_sound(loaded)
        notes += loaded.load_note is not None
        json.dumps(loaded.to_dict(), allow_nan=False)
        if i % 30 == 0:  # a real save fsyncs: a few suffice to show the file loads back clean
            assert loaded.save(path)
            assert Settings.load(path).load_note is None
    elapsed = time.perf_counter() - start
    assert notes > 220, "the mutations should mostly damage the file"
    assert elapsed < 10, f"300 fuzzed loads took {elapsed:.1f} s"


def test_a_version_one_default_inpaint_method_becomes_the_new_default(tmp_path) -> None:
    # version 1 saved every field, so "studio-inpaint" there was its default, not a choice
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"inpaint_method": "studio-inpaint", "grow_px": 12}))
    loaded = Settings.load(path)
    assert loaded.inpaint_method == "auto" and loaded.grow_px == 12
    assert loaded.load_note is None
    # any other method in a version-1 file was chosen, and a version-2 file is read as it is
    path.write_text(json.dumps({"inpaint_method": "patchmatch"}))
    assert Settings.load(path).inpaint_method == "patchmatch"
    chosen = Settings(inpaint_method="studio-inpaint")
    assert chosen.save(path)
    assert Settings.load(path).inpaint_method == "studio-inpaint"
    assert json.loads(path.read_text())["settings_version"] == 2
