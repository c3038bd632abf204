"""EngineConfig: built once at the edge; bad environment values warn, bad explicit ones fail."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from studio.engine.config import EngineConfig
from studio.errors import BadInputError

ROOT = Path(__file__).resolve().parents[2] / "studio"


def test_defaults_and_environment(tmp_path) -> None:
    env = {
        "STUDIO_DEVICE": "CPU",
        "STUDIO_THREADS": "3",
        "STUDIO_PRECISION": "bf16",
        "STUDIO_COMPILE": "1",
    }
    config = EngineConfig.from_environment(env, interactive=True, data_dir=tmp_path)
    assert config == EngineConfig(
        device="cpu",
        threads=3,
        interactive=True,
        precision="bf16",
        compile="on",
        tuning_file=tmp_path / "tuning.json",
        compile_cache=tmp_path / "compile-cache",
    )
    assert config.cpu_threads == 3
    plain = EngineConfig.from_environment({})
    assert (plain.device, plain.threads, plain.precision, plain.compile) == (
        None,
        None,
        "auto",
        "auto",
    )


@pytest.mark.parametrize(
    ("name", "value", "field", "default"),
    [
        ("STUDIO_THREADS", "abc", "threads", None),
        ("STUDIO_THREADS", "-5", "threads", None),
        ("STUDIO_THREADS", "99999999999999999999", "threads", None),
        ("STUDIO_DEVICE", "toaster", "device", None),
        ("STUDIO_DEVICE", "cuda:x", "device", None),
        ("STUDIO_PRECISION", "fp8", "precision", "auto"),
        ("STUDIO_COMPILE", "maybe", "compile", "auto"),
    ],
)
def test_bad_environment_values_warn_once_and_fall_back(
    capsys, name, value, field, default
) -> None:
    config = EngineConfig.from_environment({name: value})
    assert getattr(config, field) == default
    err = capsys.readouterr().err
    assert err.count("studio: warning:") <= 1 and (name in err or err == "")  # once per process
    EngineConfig.from_environment({name: value})
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "changes",
    [{"precision": "fp8"}, {"compile": "sometimes"}, {"threads": 0}, {"device": "toaster"}],
)
def test_bad_explicit_values_are_clear_errors(changes) -> None:
    with pytest.raises(BadInputError):
        EngineConfig(**changes)


def test_interactive_leaves_a_core_for_the_ui(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert EngineConfig(interactive=True).cpu_threads == 3
    assert EngineConfig().cpu_threads == 4


def environ_readers(folder: str) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    return found


@pytest.mark.parametrize("folder", ["engine", "models", "document"])
def test_nothing_below_the_edge_reads_the_environment(folder) -> None:
    allowed = {"studio/engine/config.py"}
    readers = [r for r in environ_readers(folder) if r.split(":")[0] not in allowed]
    assert readers == [], "read settings through EngineConfig, built at the edge"


def test_compile_cache_goes_to_the_user_data_folder(tmp_path, monkeypatch) -> None:
    from studio.engine.config import use_compile_cache

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "restored-after-the-test")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    config = EngineConfig.from_environment({}, data_dir=tmp_path)
    use_compile_cache(config)
    assert (tmp_path / "compile-cache").is_dir()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "compile-cache")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/elsewhere")
    use_compile_cache(config)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/elsewhere"  # the artist's choice wins
