"""Background checks: one run at a time, at most one per interval, never stuck busy."""
from __future__ import annotations

import threading

import pytest

from watchdog import scheduling
from watchdog.scheduling import BackgroundTask


def test_one_run_at_a_time_and_one_per_interval() -> None:
    gate = threading.Event()
    task = BackgroundTask("t", lambda: gate.wait(5) and 42, interval=10.0, clock=lambda: 0.0)
    assert task.due(0.0)
    assert task.maybe_start(0.0)
    assert task.busy and not task.due(100.0)
    assert not task.maybe_start(100.0)  # one in flight
    gate.set()
    assert task.wait(5)
    assert not task.busy and task.finished
    [outcome] = task.take()
    assert outcome.value == 42 and outcome.error is None and not task.finished
    assert not task.maybe_start(5.0)  # the interval counts from the last start
    assert task.maybe_start(10.0)
    assert task.wait(5)


def test_an_error_is_carried_in_the_outcome() -> None:
    def boom() -> int:
        raise OSError("statvfs hung up")

    task = BackgroundTask("t", boom, interval=1.0, clock=lambda: 0.0)
    task.maybe_start(0.0)
    assert task.wait(5)
    [outcome] = task.take()
    assert isinstance(outcome.error, OSError) and outcome.value is None
    assert not task.busy


def test_a_run_killed_by_a_base_exception_does_not_leave_the_task_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the thread's traceback is expected

    def exits() -> int:
        raise SystemExit(3)

    task = BackgroundTask("t", exits, interval=1.0, clock=lambda: 0.0)
    task.maybe_start(0.0)
    assert task.wait(5)
    assert not task.busy
    assert task.maybe_start(1.0)  # the next period starts a run again
    task.wait(5)


def test_no_thread_to_be_had_leaves_the_task_free(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoThread(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(scheduling.threading, "Thread", NoThread)
    task = BackgroundTask("t", lambda: 1, interval=1.0, clock=lambda: 0.0)
    with pytest.raises(RuntimeError):
        task.maybe_start(0.0)
    assert not task.busy
    monkeypatch.undo()
    assert task.maybe_start(1.0)
    assert task.wait(5) and task.take()[0].value == 1
