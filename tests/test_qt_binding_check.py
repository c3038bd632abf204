"""studio.qt_binding: which PySide6 releases are named as known-bad, and the check stays Qt-free."""

from __future__ import annotations

import subprocess
import sys

import pytest

from studio import qt_binding
from studio.qt_binding import binding_problem, installed_binding_version, known_bad_binding


@pytest.mark.parametrize("version", ["6.12.0", "6.12.1", "6.12"])
def test_the_6_12_series_is_named_on_python_3_11(version) -> None:
    message = binding_problem(version, (3, 11))
    assert message is not None
    assert f"PySide6 {version}" in message
    assert "Python 3.11" in message
    assert "bool_dealloc" in message
    assert "PYSIDE-3474" in message
    assert message.endswith('pip install "PySide6-Essentials<6.12"')
    assert "\n" not in message, "one paragraph"


@pytest.mark.parametrize("version", ["6.11.3", "6.11.0", "6.6.0", "6.13.0", "6.120.0", None])
def test_other_releases_pass(version) -> None:
    assert binding_problem(version, (3, 11)) is None


@pytest.mark.parametrize("python", [(3, 12), (3, 13)])
def test_immortal_true_and_none_make_6_12_harmless(python) -> None:
    assert binding_problem("6.12.0", python) is None


def test_the_installed_version_is_read_from_metadata() -> None:
    import PySide6

    assert installed_binding_version() == PySide6.__version__


def test_known_bad_binding_checks_the_installed_release(monkeypatch) -> None:
    monkeypatch.setattr(qt_binding, "installed_binding_version", lambda: "6.12.0")
    if sys.version_info < (3, 12):
        assert "PySide6 6.12.0" in known_bad_binding()
    else:
        assert known_bad_binding() is None
    monkeypatch.setattr(qt_binding, "installed_binding_version", lambda: "6.11.3")
    assert known_bad_binding() is None


def test_the_check_imports_no_qt() -> None:
    code = (
        "import sys, studio.qt_binding as q; q.known_bad_binding(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
