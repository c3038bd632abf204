"""The Qt engine thread: ordered delivery on the GUI thread, cancel, supersede, survival."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QObject, QThread, Signal, Slot

from fakes import FakeParams
from studio.engine.jobs import JobRequest, UpscaleParams
from studio.engine.messages import (
    TERMINAL,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    Message,
    TileReady,
)


class Receiver(QObject):
    """Lives on the GUI thread; records messages there and re-emits after recording."""

    got = Signal(object)

    def __init__(self, engine) -> None:
        super().__init__()
        self.messages: list[Message] = []
        self.threads: set[int] = set()
        engine.message.connect(self.on_message)

    @Slot(object)
    def on_message(self, msg: Message) -> None:
        self.threads.add(threading.get_ident())
        self.messages.append(msg)
        self.got.emit(msg)

    def of(self, job_id: int) -> list[str]:
        return [type(m).__name__ for m in self.messages if m.job_id == job_id]


def wait_terminal(qtbot, receiver: Receiver, job_id: int, timeout: int = 10000) -> Message:
    def done(msg) -> bool:
        return msg.job_id == job_id and isinstance(msg, TERMINAL)

    with qtbot.waitSignal(receiver.got, timeout=timeout, check_params_cb=done) as blocker:
        pass
    return blocker.args[0]


def test_messages_arrive_in_order_on_the_gui_thread(qtbot, engine) -> None:
    rx = Receiver(engine)
    req = JobRequest(FakeParams(tiles=3), np.zeros((4, 4, 3), np.uint8))
    with qtbot.waitSignal(
        rx.got, timeout=10000, check_params_cb=lambda m: isinstance(m, JobFinished)
    ):
        engine.submit(req)
    assert rx.of(req.job_id) == ["JobStarted", "JobProgress"] + ["TileReady", "JobProgress"] * 3 + [
        "JobFinished"
    ]
    assert rx.threads == {threading.get_ident()}, "messages must be delivered on the GUI thread"
    assert QThread.currentThread() is not engine


def test_cancel_mid_job_then_the_engine_takes_the_next_job(qtbot, engine, gates) -> None:
    rx = Receiver(engine)
    first = JobRequest(FakeParams(tiles=6, gated=True), np.zeros((6, 4, 3), np.uint8))
    second = JobRequest(FakeParams(tiles=2), np.zeros((2, 2, 3), np.uint8))
    engine.submit(first)
    engine.submit(second)
    gates.release(0)
    gates.release(1)
    assert gates.reached[2].wait(10)  # two tiles done, the third is waiting
    engine.cancel(first.job_id)
    gates.release(2)
    with qtbot.waitSignal(
        rx.got,
        timeout=10000,
        check_params_cb=lambda m: m.job_id == second.job_id and isinstance(m, JobFinished),
    ):
        pass
    first_kinds = rx.of(first.job_id)
    assert first_kinds[-1] == "JobCancelled" and "JobFinished" not in first_kinds
    assert first_kinds.count("TileReady") == 2
    assert rx.of(second.job_id)[0] == "JobStarted"


def test_cancelling_a_queued_job_never_starts_it(qtbot, engine, gates) -> None:
    rx = Receiver(engine)
    running = JobRequest(FakeParams(tiles=1, gated=True), np.zeros((2, 2, 3), np.uint8))
    queued = JobRequest(FakeParams(tiles=1), np.zeros((2, 2, 3), np.uint8))
    engine.submit(running)
    engine.submit(queued)
    assert gates.reached[0].wait(10)
    engine.cancel(queued.job_id)
    gates.release(0)
    assert isinstance(wait_terminal(qtbot, rx, queued.job_id), JobCancelled)
    assert rx.of(queued.job_id) == ["JobCancelled"]
    assert rx.of(running.job_id)[-1] == "JobFinished"


def test_a_failing_task_reports_and_the_thread_stays_alive(qtbot, engine) -> None:
    rx = Receiver(engine)
    bad = JobRequest(FakeParams(tiles=2, fail_at=0), np.zeros((2, 2, 3), np.uint8))
    engine.submit(bad)
    failed = wait_terminal(qtbot, rx, bad.job_id)
    assert isinstance(failed, JobFailed) and "boom" in failed.message
    assert engine.isRunning()
    good = JobRequest(FakeParams(tiles=1), np.zeros((2, 2, 3), np.uint8))
    engine.submit(good)
    assert isinstance(wait_terminal(qtbot, rx, good.job_id), JobFinished)


def test_supersede_key_replaces_an_older_live_request(qtbot, engine, gates) -> None:
    rx = Receiver(engine)
    old = JobRequest(
        FakeParams(tiles=3, gated=True), np.zeros((3, 2, 3), np.uint8), supersede_key="preview"
    )
    engine.submit(old)
    assert gates.reached[0].wait(10)
    new = JobRequest(FakeParams(tiles=1), np.zeros((2, 2, 3), np.uint8), supersede_key="preview")
    engine.submit(new)
    gates.release_all()
    assert isinstance(wait_terminal(qtbot, rx, new.job_id), JobFinished)
    assert rx.of(old.job_id)[-1] == "JobCancelled"


def test_real_upscale_through_the_thread_streams_tiles(qtbot, engine, photo) -> None:
    rx = Receiver(engine)
    req = JobRequest(UpscaleParams("lanczos", 2, tile=32), photo)
    engine.submit(req)
    finished = wait_terminal(qtbot, rx, req.job_id)
    assert isinstance(finished, JobFinished)
    assert finished.image.shape == (192, 256, 3)
    tiles = [m for m in rx.messages if isinstance(m, TileReady) and m.job_id == req.job_id]
    assert len(tiles) == 12 and all(t.final for t in tiles)
    assert isinstance(rx.messages[0], JobStarted)


def test_shutdown_interrupts_a_running_job(qtbot, fake_runner_factory, gates) -> None:
    from studio.engine.thread import EngineThread

    thread = EngineThread(fake_runner_factory, interactive=False)
    thread.start()
    thread.submit(JobRequest(FakeParams(tiles=5, gated=True), np.zeros((5, 2, 3), np.uint8)))
    assert gates.reached[0].wait(10)
    gates.release_all()
    assert thread.shutdown(5000)
    assert not thread.isRunning()


@pytest.mark.parametrize("device", ["cuda:7", "nonsense"])
def test_bad_device_env_runs_jobs_on_the_automatic_choice(qtbot, monkeypatch, capfd, device):
    import torch

    from studio.engine import config as config_module
    from studio.engine.config import EngineConfig
    from studio.engine.thread import EngineThread

    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("cuda:7 exists here")
    monkeypatch.setenv("STUDIO_DEVICE", device)
    monkeypatch.setattr(config_module, "_warned", set())
    thread = EngineThread(config=EngineConfig.from_environment(interactive=False))
    rx = Receiver(thread)
    thread.start()
    req = JobRequest(UpscaleParams("lanczos", 2), np.zeros((4, 4, 3), np.uint8))
    thread.submit(req)
    finished = wait_terminal(qtbot, rx, req.job_id)
    assert thread.shutdown(5000)
    assert isinstance(finished, JobFinished), finished
    warnings = [line for line in capfd.readouterr().err.splitlines() if device in line]
    assert len(warnings) == 1 and warnings[0].startswith("studio: warning: ")
    assert "using the" in warnings[0]


def test_a_runner_that_cannot_start_fails_jobs_with_the_reason(qtbot) -> None:
    from studio.engine.thread import EngineThread
    from studio.errors import StudioError

    def broken_runner():
        raise StudioError("no device for the engine")

    thread = EngineThread(broken_runner, interactive=False)
    rx = Receiver(thread)
    thread.start()
    req = JobRequest(UpscaleParams("lanczos", 2), np.zeros((4, 4, 3), np.uint8))
    thread.submit(req)
    failed = wait_terminal(qtbot, rx, req.job_id)
    assert isinstance(failed, JobFailed) and "no device for the engine" in failed.message
    assert thread.shutdown(5000)
