"""The dispatcher: what an ordinary event costs is counted, not timed."""
from __future__ import annotations

from tests.helpers import frame, state_frame, tick_frame
from tests.watchers.support import Clock
from watchdog.app import Monitor
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import Envelope, HostSample
from watchdog.sources.supervisor_protocol import parse_header


def envelope(raw: str) -> Envelope:
    header, _, payload = raw.partition("\n")
    return Envelope(parse_header(header), payload)


def monitor(settings: Settings, rulebook: RuleBook) -> tuple[Monitor, Clock, list[str]]:
    clock = Clock()
    writes: list[str] = []
    mon = Monitor(settings, rulebook, clock=clock, writer=lambda p, t: writes.append(t), host_sampler=HostSample)
    return mon, clock, writes


def test_events_of_unwatched_programs_touch_nothing(settings: Settings, rulebook: RuleBook) -> None:
    mon, clock, writes = monitor(settings, rulebook)
    mon.handle(envelope(state_frame("STARTING", "containerd", "STOPPED", 1)))
    calls, written, book, views = clock.calls, len(writes), mon.book, dict(mon.processes)
    for i in range(1000):
        mon.handle(envelope(state_frame("BACKOFF", "cloudadaptor", "STARTING", i)))
        mon.handle(envelope(frame("PROCESS_LOG_STDOUT", "processname:k3s groupname:k3s pid:9 channel:stdout\n"
                                  "E1203 failed to load image: oops\n", i)))
        mon.handle(envelope(frame("SUPERVISOR_STATE_CHANGE_RUNNING", "", i)))
    assert clock.calls == calls  # not even the clock is read
    assert len(writes) == written and mon.book is book and mon.processes == views


def test_the_watchers_are_called_only_for_the_hooks_they_have(settings: Settings, rulebook: RuleBook) -> None:
    mon, _, _ = monitor(settings, rulebook)
    assert [h.__self__.name for h in mon._on_log] == ["init-output"]  # type: ignore[attr-defined]
    assert [h.__self__.name for h in mon._on_state] == ["processes"]  # type: ignore[attr-defined]
    assert [h.__self__.name for h in mon._on_tick] == [  # type: ignore[attr-defined]
        "processes", "region", "host", "console", "boot"]


def test_a_tick_with_nothing_due_changes_nothing(settings: Settings, rulebook: RuleBook) -> None:
    mon, clock, writes = monitor(settings, rulebook)
    mon.handle(envelope(tick_frame(int(clock.t))))
    assert mon.wait_background(5)
    mon.handle(envelope(tick_frame(int(clock.t))))
    book, written = mon.book, len(writes)
    for _ in range(1000):
        mon.handle(envelope(tick_frame(int(clock.t))))
    assert mon.book is book and len(writes) == written
    assert all(not t.busy for t in mon.tasks)
