"""The plain-Python runner: message order, failures as messages, cancellation."""

from __future__ import annotations

import numpy as np

from fakes import FakeKind, FakeParams
from studio.engine.jobs import CancelToken, JobRequest
from studio.engine.messages import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
    TileReady,
)
from studio.engine.task_table import unregister


def kinds(messages):
    return [type(m).__name__ for m in messages]


def test_message_order_for_a_job(fake_runner_factory) -> None:
    runner = fake_runner_factory()
    request = JobRequest(FakeParams(tiles=3), np.zeros((4, 5, 3), np.uint8))
    messages = list(runner.run(request))
    assert kinds(messages) == ["JobStarted", "JobProgress"] + ["TileReady", "JobProgress"] * 3 + [
        "JobFinished"
    ]
    assert all(m.job_id == request.job_id for m in messages)
    progress = [m for m in messages if isinstance(m, JobProgress)]
    assert [p.done for p in progress] == [0, 1, 2, 3]
    assert progress[1].eta_s is not None and progress[-1].eta_s == 0
    tile = next(m for m in messages if isinstance(m, TileReady))
    assert not tile.pixels.flags.writeable, "arrays crossing threads must be read-only"
    assert isinstance(messages[-1], JobFinished) and messages[-1].info == {"tiles": 3}


def test_exception_in_task_becomes_failed_with_its_message(fake_runner_factory) -> None:
    runner = fake_runner_factory()
    messages = list(
        runner.run(JobRequest(FakeParams(tiles=3, fail_at=1), np.zeros((4, 4, 3), np.uint8)))
    )
    assert isinstance(messages[0], JobStarted)
    assert isinstance(messages[-1], JobFailed)
    assert "boom at tile 1" in messages[-1].message and messages[-1].kind == "error"
    assert "ValueError" in messages[-1].details  # the traceback is kept for the log
    assert not any(isinstance(m, JobFinished) for m in messages)


def test_cancel_mid_job_gives_cancelled_and_no_finished(fake_runner_factory) -> None:
    runner = fake_runner_factory()
    token = CancelToken()
    messages = []
    for m in runner.run(JobRequest(FakeParams(tiles=5), np.zeros((6, 4, 3), np.uint8)), token):
        messages.append(m)
        if isinstance(m, TileReady):
            token.cancel()
    assert isinstance(messages[-1], JobCancelled)
    assert sum(isinstance(m, TileReady) for m in messages) == 1
    assert not any(isinstance(m, JobFinished) for m in messages)


def test_unknown_task_fails_cleanly(fake_runner_factory) -> None:
    runner = fake_runner_factory()
    unregister(FakeKind.FAKE)
    messages = list(runner.run(JobRequest(FakeParams(), np.zeros((2, 2, 3), np.uint8))))
    assert kinds(messages) == ["JobStarted", "JobFailed"]
    assert messages[-1].kind == "bad_input"
