"""Known-bad releases of the Qt binding, found without importing Qt.

PySide6 6.12.0 drops a reference to ``True`` on every ``Signal.emit()`` and references to
``None`` on other calls (upstream PYSIDE-3474). On Python 3.11 those objects are mortal: once a
count reaches zero the interpreter aborts (``Fatal Python error: bool_dealloc`` or
``none_dealloc``), which in the editor happened after 100-150 brush strokes. From Python 3.12 on
they are immortal and the lost references are harmless. ``pyproject.toml`` keeps the binding
below 6.12; this check names the problem when an environment has the bad release anyway.
"""

from __future__ import annotations

import sys
from importlib import metadata

# The release series that drains reference counts on Python < 3.12. 6.12.0 was measured
# (tests/ui/test_qt_binding.py); upstream treats the leak as a consequence of how the whole
# 6.12 series is built, so later 6.12.x releases are assumed to share it.
BAD_SERIES = "6.12"
IMMORTAL_SINCE = (3, 12)
FIX = 'pip install "PySide6-Essentials<6.12"'


def installed_binding_version() -> str | None:
    """The installed PySide6 version, read from package metadata (None when not installed)."""
    for dist in ("PySide6-Essentials", "PySide6"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def binding_problem(version: str | None, python: tuple[int, int]) -> str | None:
    """The message for PySide6 ``version`` running on Python ``python``, or None if it is fine."""
    if version is None or python >= IMMORTAL_SINCE:
        return None
    if version != BAD_SERIES and not version.startswith(BAD_SERIES + "."):
        return None
    return (
        f"PySide6 {version} is known to crash Studio on Python {python[0]}.{python[1]}: "
        "every Qt signal it sends drops a reference to Python's True (other calls drop "
        "references to None), and within a few hundred brush strokes the interpreter aborts "
        "with 'Fatal Python error: bool_dealloc' (or 'none_dealloc'), losing unsaved work "
        f"(upstream bug PYSIDE-3474). Install a working release with: {FIX}"
    )


def known_bad_binding() -> str | None:
    """A one-paragraph warning if the installed Qt binding is a known-bad release, else None."""
    return binding_problem(installed_binding_version(), sys.version_info[:2])
