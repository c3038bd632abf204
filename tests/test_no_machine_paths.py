"""Paths of one machine never go into committed code: data, caches and runs come from
``studio.paths`` (``$STUDIO_CACHE``, ``$STUDIO_HOME``) or from options."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# quoted in code, or bare in a docstring or comment (a command line to copy)
MACHINE_PATH = re.compile(r"""(^|[\s"'=(])(/work/|/home/|/root/|/Users/|/tmp/)""")


def test_no_absolute_machine_paths_in_code() -> None:
    found = []
    for folder in ("studio", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if MACHINE_PATH.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "take the folder from studio.paths or an option:\n" + "\n".join(found)


def test_the_data_cache_follows_the_environment(monkeypatch, tmp_path) -> None:
    from studio.paths import data_cache_dir

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    assert data_cache_dir() == tmp_path
    monkeypatch.delenv("STUDIO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_cache_dir() == tmp_path / "xdg" / "studio"
