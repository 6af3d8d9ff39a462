"""The processes watcher alone: states, failures, flapping, resolution, resync (no processes)."""
from __future__ import annotations

import dataclasses

from tests.test_app import FakeRpc
from tests.watchers.support import make_board
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import ABSENT, ProcessInfo, ProcessStateChange
from watchdog.watchers.processes import ProcessesWatcher


def change(name: str, to: str, frm: str = "STARTING", **kw: object) -> ProcessStateChange:
    return ProcessStateChange(name, name, frm, to, **kw)  # type: ignore[arg-type]


def test_a_failure_is_diagnosed_from_the_programs_log(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook, tails={
        "k3s.log": ['time="2026-12-03T08:08:09Z" level=fatal msg="starting kubernetes: preparing server: '
                    'init cluster datastore and https: listen tcp :6443: bind: address already in use"'],
    })
    w = ProcessesWatcher(board, rpc=None)
    changes = w.on_state_change(change("k3s", "BACKOFF"), clock.t)
    assert [c.problem.finding.id for c in changes] == ["k3s.port-in-use"]
    assert board.processes["k3s"].state == "BACKOFF"
    assert ("k3s.start-failed", "k3s") not in board.book.active  # the specific cause, not the generic one


def test_an_unknown_program_changes_nothing(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = ProcessesWatcher(board, rpc=None)
    before = dict(board.processes)
    assert w.on_state_change(change("cloudadaptor", "BACKOFF"), clock.t) == []
    assert board.processes == before and not board.book.active


def test_flapping_is_raised_and_keeps_at_most_flap_restarts_start_times(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = ProcessesWatcher(board, rpc=None)
    raised = []
    for _ in range(1000):
        clock.t += 0.01
        raised += w.on_state_change(change("console", "STARTING", "EXITED"), clock.t)
        w.on_state_change(change("console", "RUNNING"), clock.t)
    assert [c.problem.finding.id for c in raised] == ["process.flapping"]
    assert board.book.active[("process.flapping", board.programs["console"])].count > 900
    assert len(board.processes["console"].starts) == settings.flap_restarts
    assert board.processes["console"].restarts == 1000


def test_a_program_that_stayed_running_has_its_problems_resolved(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = ProcessesWatcher(board, rpc=None)
    w.on_state_change(change("containerd", "BACKOFF"), clock.t)
    assert board.book.in_scope("process:containerd")
    w.on_state_change(change("containerd", "RUNNING"), clock.t)
    assert w.refresh(clock.t + settings.resolve_after_seconds - 1) == []
    gone = w.refresh(clock.t + settings.resolve_after_seconds)
    assert gone and all(c.kind == "resolved" for c in gone)
    assert not board.book.in_scope("process:containerd")


def test_resync_decides_the_layout_and_diagnoses_a_failure_it_finds(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, log = make_board(settings, dataclasses.replace(rulebook))
    rpc = FakeRpc([ProcessInfo("k3s", "FATAL"), ProcessInfo("console", "RUNNING", start=clock.t - 5),
                   ProcessInfo("init_rainbond", "EXITED")])
    w = ProcessesWatcher(board, rpc=rpc)  # type: ignore[arg-type]
    w.on_tick(clock.t)
    assert board.layout == "embedded"  # no containerd or docker program
    assert board.processes["k3s"].state == "FATAL"
    assert board.processes["containerd"].state == ABSENT
    assert [c.problem.finding.id for c in board.pending] == ["k3s.start-failed"]
    assert log.events("info").count("layout") == 1
    w.on_tick(clock.t + 5)  # a tick after the first resync reads nothing (TICK_60 resyncs)
    assert log.events("info").count("layout") == 1
