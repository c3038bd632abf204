"""Checks of loaded settings values by their declared type and limits. Qt-free, torch-free.

Every field of a settings dataclass is checked by its type annotation: a bool must be a bool, a
number must be finite and within range, a string short UTF-8 text without NUL, a tuple or list
element by element, a nested dataclass field by field. ``field(..., metadata=limits(...))``
narrows a field's range or lists its choices; without it a safe default rule applies, so fields
added later are covered without edits here. A value that fails keeps the field's default.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: Default range of an int: what a Qt spin box, slider or QColor takes without OverflowError.
INT_RANGE = (-(2**31), 2**31 - 1)
#: Default range of a float: finite, and small enough to round into :data:`INT_RANGE`.
FLOAT_RANGE = (-1e9, 1e9)
#: Default longest string (a path is at most 4096 bytes on Linux) and longest list.
MAX_TEXT = 4096
MAX_ITEMS = 1000

_KEY = "studio.limits"


@dataclass(frozen=True, eq=False)
class Limits:
    """What a field may hold beyond its type. ``None`` means the default rule."""

    lo: float | None = None
    hi: float | None = None
    #: the only values allowed (strings of a fixed set, a bool that must stay False, ...)
    choices: tuple[Any, ...] | None = None
    #: longest string, list or variable-length tuple
    max_len: int | None = None
    #: limits of each element of a tuple or list
    items: Limits | None = None
    #: limits of the fields of a nested dataclass, by field name
    fields: Mapping[str, Limits] | None = None


def limits(**kwargs: Any) -> dict[str, Limits]:
    """Field metadata, e.g. ``field(default=0.5, metadata=limits(lo=0.05, hi=1.0))``."""
    return {_KEY: Limits(**kwargs)}


class _Invalid(Exception):
    """The value does not fit its field."""


class _Unsupported(Exception):
    """The field's type has no check here; the field keeps its default."""


def validated(cls: type, data: Mapping[str, Any], base: Any = None) -> tuple[Any, list[str]]:
    """``base`` (default: ``cls()``) with every field of ``data`` that passes its check, and the
    names of the fields that did not (nested ones as ``outer.inner``). Unknown keys are ignored.
    """
    return _dataclass(cls, data, base if base is not None else cls(), None, "")


def invalid_fields(obj: Any) -> list[str]:
    """Names of the fields of a dataclass instance that would not pass :func:`validated`."""
    return validated(type(obj), dataclasses.asdict(obj))[1]


def unsupported_fields(cls: type) -> list[str]:
    """Names of the fields of ``cls`` whose type this module cannot check (they always keep
    their default when loaded; a test keeps this list empty)."""
    out = []
    base = cls()
    for f in dataclasses.fields(cls):
        default = getattr(base, f.name)
        try:
            _check(_hints(cls).get(f.name), default, default, _limits_of(f, None), f.name, [])
        except _Unsupported:
            out.append(f.name)
        except _Invalid:
            pass
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation naming a TYPE_CHECKING-only import: judge by the defaults
        return {}


def _limits_of(f: dataclasses.Field, outer: Mapping[str, Limits] | None) -> Limits:
    if outer and f.name in outer:
        return outer[f.name]
    return f.metadata.get(_KEY) or Limits()


def _dataclass(
    cls: type, data: Any, base: Any, outer: Mapping[str, Limits] | None, prefix: str
) -> tuple[Any, list[str]]:
    if not isinstance(data, Mapping):
        raise _Invalid
    changes: dict[str, Any] = {}
    rejected: list[str] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in data:
            continue
        name = prefix + f.name
        default = getattr(base, f.name)
        try:
            changes[f.name] = _check(
                hints.get(f.name), default, data[f.name], _limits_of(f, outer), name, rejected
            )
        except _Invalid:
            rejected.append(name)
        except _Unsupported:
            pass
    return dataclasses.replace(base, **changes), rejected


def _check(hint: Any, default: Any, value: Any, lim: Limits, name: str, rejected: list) -> Any:
    """``value`` as the field holds it, or raise :class:`_Invalid`."""
    if hint is None:
        hint = _hint_for(default)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Invalid
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _check(arg, default, value, lim, name, rejected)
                except _Invalid:
                    continue
        raise _Invalid
    if origin in (tuple, list):
        return _sequence(origin, args, default, value, lim, name, rejected)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        base = default if isinstance(default, hint) else _construct(hint)
        out, inner = _dataclass(hint, value, base, lim.fields, name + ".")
        rejected.extend(inner)
        return out
    if hint is bool:
        ok = value is True or value is False
    elif hint is int:
        ok = _in_range(value, lim, INT_RANGE) if type(value) is int else False
    elif hint is float:
        value = _as_float(value)
        ok = _in_range(value, lim, FLOAT_RANGE)
    elif hint is str:
        ok = _is_text(value, lim.max_len or MAX_TEXT)
    else:
        raise _Unsupported
    if not ok or (lim.choices is not None and value not in lim.choices):
        raise _Invalid
    return value


def _sequence(origin, args, default, value, lim: Limits, name: str, rejected: list) -> Any:
    if not isinstance(value, list | tuple):
        raise _Invalid
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise _Invalid
        element_hints = list(args)
    else:
        if len(value) > (lim.max_len or MAX_ITEMS):
            raise _Invalid
        element_hints = [args[0] if args else None] * len(value)
    defaults = default if isinstance(default, list | tuple) else ()
    items = []
    for i, (hint, v) in enumerate(zip(element_hints, value, strict=True)):
        d = defaults[i] if i < len(defaults) else None
        if hint is None and d is None:
            raise _Unsupported  # a bare list with no default elements: nothing to judge by
        items.append(_check(hint, d, v, lim.items or Limits(), f"{name}[{i}]", rejected))
    return origin(items)


def _hint_for(default: Any) -> Any:
    """The type to check against when a field has no usable annotation."""
    if isinstance(default, tuple):
        return tuple[tuple(_hint_for(d) for d in default)] if default else tuple
    if dataclasses.is_dataclass(default):
        return type(default)
    if isinstance(default, bool | int | float | str):
        return type(default)
    raise _Unsupported


def _construct(cls: type) -> Any:
    try:
        return cls()
    except TypeError:  # a dataclass with required fields and no default to start from
        raise _Invalid from None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > 2**53:  # float() of 10**400 raises
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _in_range(value: float | None, lim: Limits, default: tuple[float, float]) -> bool:
    if value is None:
        return False
    lo = default[0] if lim.lo is None else lim.lo
    hi = default[1] if lim.hi is None else lim.hi
    return lo <= value <= hi


def _is_text(value: Any, max_len: int) -> bool:
    if not isinstance(value, str) or len(value) > max_len or "\x00" in value:
        return False
    try:
        value.encode("utf-8")  # a lone surrogate ("\ud800" in the JSON) cannot reach Qt or disk
    except UnicodeEncodeError:
        return False
    return True
