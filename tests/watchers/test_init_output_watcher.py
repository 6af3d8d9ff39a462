"""The init output watcher alone: image-load failures from the init program's lines."""
from __future__ import annotations

from tests.watchers.support import make_board
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import ProcessView
from watchdog.watchers.base import INIT_BUFFER_LINES
from watchdog.watchers.init_output import INIT_SCOPE, InitOutputWatcher

LOAD_FAILED = 'time="2026-12-03T08:01:02Z" level=fatal msg="failed to load image: unexpected status 500"'


def test_a_load_failure_in_the_init_output_is_raised_with_its_lines(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = InitOutputWatcher(board)
    w.on_log("init_rainbond", ["INFO: Loading images ····", LOAD_FAILED], clock.t)
    (problem,) = board.book.in_scope(INIT_SCOPE)
    assert problem.finding.id == "images.load-failed"
    assert any("failed to load image" in line for line in problem.finding.evidence)


def test_output_of_a_watched_program_is_not_read(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = InitOutputWatcher(board)
    assert w.on_log(board.programs["k3s"], [LOAD_FAILED], clock.t) == []
    assert not board.init_lines and not board.book.active


def test_image_problems_end_when_k3s_begins(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = InitOutputWatcher(board)
    w.on_log("init_rainbond", [LOAD_FAILED], clock.t)
    assert w.refresh(clock.t) == []
    board.processes["k3s"] = ProcessView("STARTING", since=clock.t)
    assert [c.kind for c in w.refresh(clock.t + 1)] == ["resolved"]
    assert not board.book.in_scope(INIT_SCOPE)


def test_the_buffer_is_bounded(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    w = InitOutputWatcher(board)
    for i in range(INIT_BUFFER_LINES * 5):
        w.on_log("init_rainbond", [f"INFO: line {i}"], clock.t)
    assert len(board.init_lines) == INIT_BUFFER_LINES
    assert board.init_lines[-1] == f"INFO: line {INIT_BUFFER_LINES * 5 - 1}"
