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


def test_a_storms_line_counts_from_the_raise_and_a_new_storm_starts_over(settings: Settings, rulebook: RuleBook) -> None:
    """The first summary says how many starts came since the raise's own line; a problem resolved
    and raised again between two looks is a new storm (its own minute, its own count)."""
    board, clock, log = make_board(settings, rulebook)
    w = BootWatcher(board)
    flapping = rulebook.finding("process.flapping", "k3s", evidence=["k3s started 5 times"], source="supervisord:k3s",
                                scope="process:k3s", details={"starts": "5", "window": "120"})
    t = clock.t
    board.book, _ = board.book.add([rulebook.finding("phase.stuck", "k3s")], t - 10)  # the book is not empty
    w.on_tick(t - 5)  # a look before the storm
    for i in range(31):  # raised at t, counted 30 times over 60 s, no tick meanwhile
        board.book, _ = board.book.add([flapping], t + 2 * i)
    w.on_tick(t + 61)
    lines = [kw for _, e, kw in log.lines if e == "problem_ongoing"]
    assert [(kw["count"], kw["new_since_last_line"]) for kw in lines] == [(31, 30)]
    # Over and raised again within a minute: nothing is said until its own minute has passed.
    board.book, _ = board.book.resolve_where(lambda p: p.finding.id == "process.flapping", t + 62)
    board.book, _ = board.book.add([flapping], t + 63)
    board.book, _ = board.book.add([flapping], t + 64)
    w.on_tick(t + 122)  # the old storm's minute, not the new one's
    assert len([e for _, e, _ in log.lines if e == "problem_ongoing"]) == 1
    w.on_tick(t + 124)
    lines = [kw for _, e, kw in log.lines if e == "problem_ongoing"]
    assert [(kw["count"], kw["new_since_last_line"]) for kw in lines] == [(31, 30), (2, 1)]
