"""The host and console watchers alone, with the sampler and the prober injected."""
from __future__ import annotations

import dataclasses

from tests.watchers.support import make_board
from watchdog.config import ConsoleSettings, Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import HostSample, PathUsage, ProbeResult, ProcessView
from watchdog.watchers.console import ConsoleWatcher
from watchdog.watchers.host import HostWatcher


def test_a_sample_is_judged_when_it_arrives(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    path = settings.host.paths[0]
    w = HostWatcher(board, lambda: HostSample(paths={path: PathUsage(10 * 2**20, 1.0)}))
    changes = w.on_tick(clock.t)  # the sample is taken in the background ...
    assert w.task.wait(5)
    changes += w.on_tick(clock.t + 1)  # ... and judged at the tick that finds it done
    assert "host.disk-full" in [c.problem.finding.id for c in changes]
    assert board.host.paths[path].free_percent == 1.0
    assert w.on_tick(clock.t + 2) == []  # no new sample: nothing judged again


def test_a_failing_sampler_is_said_once(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, log = make_board(settings, rulebook)

    def broken() -> HostSample:
        raise OSError("statvfs: Input/output error")

    w = HostWatcher(board, broken)
    for _ in range(3):
        clock.t += settings.host.poll_seconds
        w.on_tick(clock.t)
        assert w.task.wait(5)
    w.on_tick(clock.t)
    assert log.events("warning") == ["host_check_failed"]
    assert board.host_sample is None


def test_the_console_is_probed_only_while_it_runs(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    probes = []
    w = ConsoleWatcher(board, lambda: probes.append(1) or ProbeResult(False, "connection refused"))
    w.on_tick(clock.t)
    assert not probes and board.probe is None
    board.processes["console"] = ProcessView("RUNNING", since=clock.t)
    w.on_tick(clock.t)
    assert w.task.wait(5) and probes == [1]
    w.on_tick(clock.t + 1)
    assert board.probe == ProbeResult(False, "connection refused") and board.probe_ok_at is None
    late = clock.t + settings.console.grace_seconds + settings.console.poll_seconds
    changes = w.on_tick(late)
    assert w.task.wait(5)
    changes += w.on_tick(late)
    assert [c.problem.finding.id for c in changes] == ["console.unreachable"]


def test_no_probe_when_probing_is_off(settings: Settings, rulebook: RuleBook) -> None:
    settings = dataclasses.replace(settings, console=ConsoleSettings(probe=False))
    board, clock, _ = make_board(settings, rulebook)
    w = ConsoleWatcher(board, lambda: ProbeResult(True, "HTTP 200", 200))
    board.processes["console"] = ProcessView("RUNNING", since=clock.t)
    assert w.on_tick(clock.t) == [] and not w.task.busy and board.probe is None
