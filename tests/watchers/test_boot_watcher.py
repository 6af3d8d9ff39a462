"""The boot watcher alone: the phase, its deadlines, restart storms."""
from __future__ import annotations

from tests.watchers.support import make_board
from watchdog.config import Settings
from watchdog.diagnosis import timeline as boot
from watchdog.diagnosis.problems import ProblemBook
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import ProcessView
from watchdog.watchers.boot import STARTUP_SETTLE_SECONDS, STORM_SUMMARY_SECONDS, BootWatcher


def test_the_phase_follows_the_programs_and_the_timeline_dates_it(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = BootWatcher(board)
    board.processes["containerd"] = ProcessView("STARTING", since=clock.t)
    assert w.phase(clock.t) == "containerd"
    board.processes["containerd"] = ProcessView("RUNNING", since=clock.t + 3)
    board.processes["k3s"] = ProcessView("STARTING", since=clock.t + 60)
    assert w.phase(clock.t + 60) == "k3s"
    # a phase is dated when it is passed: containerd by its RUNNING time, k3s not yet
    assert w.timeline["containerd"] == clock.t + 3 and w.timeline["k3s"] is None


def test_a_phase_past_its_deadline_is_stuck_but_not_right_after_start(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = BootWatcher(board)
    board.processes["containerd"] = ProcessView("STARTING", since=clock.t)
    limit = boot.deadline_of("containerd", settings)
    assert limit is not None and limit > STARTUP_SETTLE_SECONDS
    w.on_tick(clock.t)
    assert w.on_tick(clock.t + limit - 1) == []
    changes = w.on_tick(clock.t + limit + 1)
    assert [(c.kind, c.problem.finding.id) for c in changes] == [("raised", "phase.stuck")]
    board.processes["containerd"] = ProcessView("RUNNING", since=clock.t + limit + 2)
    board.processes["k3s"] = ProcessView("STARTING", since=clock.t + limit + 2)
    assert [c.kind for c in w.on_tick(clock.t + limit + 3)] == ["resolved"]


def test_a_flapping_program_gets_one_line_a_minute(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, log = make_board(settings, rulebook)
    w = BootWatcher(board)
    flapping = rulebook.finding("process.flapping", "k3s", evidence=["k3s started 5 times"], source="supervisord:k3s",
                                scope="process:k3s", details={"starts": "5", "window": "120"})
    for i in range(600):  # ten minutes of ticks every second, the problem counted at each
        board.book, _ = board.book.add([flapping], clock.t + i)
        w.on_tick(clock.t + i)
    said = log.events("warning").count("problem_ongoing")
    assert 600 / STORM_SUMMARY_SECONDS - 2 <= said <= 600 / STORM_SUMMARY_SECONDS
    board.book = ProblemBook()
    w.on_tick(clock.t + 601)
    assert w._storms == {}
