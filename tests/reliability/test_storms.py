"""Storms: a program flapping 10 000 times must not flood stderr, the disk, or stall the listener."""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from tests.helpers import state_frame
from tests.reliability.conftest import Captured
from watchdog.app import Monitor, listen
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.publication import MIN_WRITE_INTERVAL
from watchdog.sinks.status_file import write_atomic
from watchdog.sources.supervisor_events import EventChannel

READY = "READY\n"
OK = "RESULT 2\nOK"
CYCLE = [("STARTING", "BACKOFF"), ("BACKOFF", "STARTING"), ("STARTING", "STARTING"), ("RUNNING", "STARTING"),
         ("EXITED", "RUNNING"), ("STARTING", "EXITED"), ("FATAL", "BACKOFF")]
"""(to_state, from_state): a program that starts, dies, backs off and is sometimes given up on."""


class SteppingClock:
    """Each reading is 1 ms later: 10 000 events span about a minute of listener time."""

    def __init__(self, start: float = 1_000_000.0, step: float = 0.001) -> None:
        self.start = self.t = start
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


class CountingWriter:
    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, path: str, text: str) -> None:
        self.writes += 1
        write_atomic(path, text)


@pytest.mark.slow
@pytest.mark.parametrize("program", ["k3s", "containerd"])
def test_ten_thousand_state_changes_are_all_answered_with_bounded_output(
    program: str, tmp_path: Path, settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """Every event answered; a handful of alerts, not thousands; status writes coalesced."""
    logs = Path(settings.log_dir)
    (logs / f"{program}.log").write_text("starting\nlisten tcp 0.0.0.0:6443: bind: address already in use\n" * 50)
    events = 10_000
    stream = "".join(
        state_frame(CYCLE[i % len(CYCLE)][0], program, from_state=CYCLE[i % len(CYCLE)][1], serial=i, pid=1000 + i,
                    expected=0, tries=i % 3)
        for i in range(events)
    )
    clock = SteppingClock()
    writer = CountingWriter()
    mon = Monitor(settings, rulebook, clock=clock, writer=writer)
    out = io.StringIO()
    assert listen(settings, rulebook, EventChannel(io.StringIO(stream), out), env={}, clock=clock, monitor=mon) == 0
    assert out.getvalue() == READY + (OK + READY) * events
    lines = stderr_log.text.splitlines()
    assert len(lines) <= 30, lines[-10:]
    raised = stderr_log.named("problem_raised")
    assert raised and all(e["subject"] == program for e in raised)
    assert not stderr_log.named("event_handling_failed")
    elapsed = clock.t - clock.start
    assert writer.writes <= elapsed / MIN_WRITE_INTERVAL + 3, (writer.writes, elapsed)
    flapping = [p for p in mon.book.active.values() if p.finding.id == "process.flapping"]
    assert len(flapping) == 1 and flapping[0].count > 1  # raised once, counted after


@pytest.mark.slow
def test_storm_of_log_events_keeps_memory_of_the_init_buffer_bounded(
    settings: Settings, rulebook: RuleBook, stderr_log: Captured
) -> None:
    """10 000 PROCESS_LOG events of the init program: the kept lines stay at the buffer's size."""
    from tests.helpers import frame
    from watchdog.watchers.base import INIT_BUFFER_LINES

    payload = "processname:init groupname:init pid:1 channel:stdout\n" + "loading image layer 42/97\n" * 5
    stream = "".join(frame("PROCESS_LOG_STDOUT", payload, i) for i in range(10_000))
    clock = SteppingClock()
    mon = Monitor(dataclasses.replace(settings), rulebook, clock=clock)
    out = io.StringIO()
    assert listen(settings, rulebook, EventChannel(io.StringIO(stream), out), env={}, clock=clock, monitor=mon) == 0
    assert out.getvalue().count(OK) == 10_000
    assert len(mon.board.init_lines) == INIT_BUFFER_LINES
    assert len(stderr_log.text.splitlines()) <= 5
