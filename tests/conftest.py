"""Shared fixtures: offscreen Qt, a guard against dangling engine threads, fake tasks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_DEVICE", "cpu")
# settings, tuning choices and caches of test runs never land in the real user-data folder
os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-test-home-"))

import numpy as np
import pytest

from fakes import FakeKind, Gates, fake_task
from studio.engine.runner import JobRunner
from studio.engine.task_table import register, unregister


@pytest.fixture(autouse=True)
def no_dangling_engine_threads() -> Generator[None, None, None]:
    """Fail any test that leaves an engine QThread running (and stop it so others are safe)."""
    yield
    try:
        from studio.engine.thread import LIVE_THREADS
    except ImportError:  # pragma: no cover
        return
    running = [t for t in list(LIVE_THREADS) if t.isRunning()]
    for t in running:
        t.shutdown(5000)
    assert not running, f"{len(running)} engine thread(s) left running by the test"


@pytest.fixture
def gates() -> Gates:
    g = Gates()
    yield g
    g.release_all()


@pytest.fixture
def fake_runner_factory(gates: Gates):
    """A runner factory, with the ``fake`` task registered in the task table meanwhile."""
    register(fake_task(gates))
    yield JobRunner
    unregister(FakeKind.FAKE)


@pytest.fixture
def engine(qtbot, fake_runner_factory):
    """A started engine thread (real tasks plus ``fake``), shut down after the test."""
    from studio.engine.thread import EngineThread

    thread = EngineThread(fake_runner_factory, interactive=False)
    thread.start()
    yield thread
    assert thread.shutdown(10000), "engine did not stop"


@pytest.fixture
def photo() -> np.ndarray:
    """A small natural-looking RGB uint8 image (smooth gradients plus texture), seeded."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    base = np.stack([x / 128, y / 96, (x + y) / 224], axis=2) * 200
    texture = rng.normal(0, 12, (96, 128, 3))
    return np.clip(base + texture + 20, 0, 255).astype(np.uint8)
