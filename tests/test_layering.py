"""The layering rules, checked on every import statement (top-level or inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "studio"
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "studio.ui", "studio.app")


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(folder: str, banned: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.name in skip:
            continue
        for name in imports_of(path):
            if any(name == b or name.startswith(b + ".") for b in banned):
                found.append(f"{path.relative_to(ROOT.parent)} imports {name}")
    return found


@pytest.mark.parametrize(
    ("folder", "banned", "skip"),
    [
        ("document", (*QT, "torch", "studio.engine", "studio.models", "studio.training"), ()),
        ("models", (*QT, "studio.engine"), ()),
        ("engine", QT, ("thread.py",)),
        ("training", QT[2:], ()),
    ],
)
def test_layer_does_not_import_upwards(folder, banned, skip) -> None:
    assert offenders(folder, banned, skip) == []


def test_shared_modules_are_qt_free() -> None:
    for name in (
        "geometry.py",
        "imageio.py",
        "errors.py",
        "paths.py",
        "cli.py",
        "settings.py",
        "metrics.py",
    ):
        bad = [n for n in imports_of(ROOT / name) if n.split(".")[0] in ("PySide6",)]
        assert bad == [], f"{name} imports {bad}"


def test_engine_has_exactly_one_qt_module() -> None:
    qt_modules = [
        p.name
        for p in (ROOT / "engine").rglob("*.py")
        if any(n.startswith("PySide6") for n in imports_of(p))
    ]
    assert qt_modules == ["thread.py"]


def test_importing_the_document_loads_neither_qt_nor_torch() -> None:
    code = (
        "import sys, studio.document; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_import_linter_contracts_hold() -> None:
    """The import-linter contracts in pyproject.toml (CI runs ``lint-imports`` too)."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([str(lint)], capture_output=True, text=True, timeout=120, cwd=ROOT.parent)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
