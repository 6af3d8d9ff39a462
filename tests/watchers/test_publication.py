"""The publication alone: alerts at once, status file writes coalesced, a failing disk said once."""
from __future__ import annotations

import json

from tests.watchers.support import make_board
from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.publication import MIN_WRITE_INTERVAL, Publisher
from watchdog.watchers.boot import BootWatcher


def test_state_churn_is_written_at_most_every_interval(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    writes: list[str] = []
    pub = Publisher(board, BootWatcher(board), lambda path, text: writes.append(text))
    steps = 1000
    for i in range(steps):  # 1000 events over 10 s
        pub.publish([], clock.t + i * 0.01)
    assert 1 <= len(writes) <= 10 / MIN_WRITE_INTERVAL + 1
    assert json.loads(writes[0])["phase"] == "containerd"


def test_a_raised_problem_is_written_at_once(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, _ = make_board(settings, rulebook)
    writes: list[str] = []
    pub = Publisher(board, BootWatcher(board), lambda path, text: writes.append(text))
    pub.publish([], clock.t)
    finding = rulebook.finding("process.flapping", "k3s", source="supervisord:k3s", scope="process:k3s",
                               details={"starts": "5", "window": "120"})
    changes = board.add([finding], clock.t + 0.01)
    pub.publish(changes, clock.t + 0.01)
    assert len(writes) == 2
    assert [p["id"] for p in json.loads(writes[1])["problems"]] == ["process.flapping"]


def test_a_failing_write_is_said_once_and_retried(settings: Settings, rulebook: RuleBook) -> None:
    board, clock, log = make_board(settings, rulebook)
    attempts: list[float] = []
    full = [True]

    def writer(path: str, text: str) -> None:
        attempts.append(clock.t)
        if full[0]:
            raise OSError(28, "No space left on device")

    pub = Publisher(board, BootWatcher(board), writer)
    for _ in range(50):
        clock.t += 0.1
        pub.publish([], clock.t)
    assert log.events("error") == ["status_write_failed"]
    assert 4 <= len(attempts) <= 5 / MIN_WRITE_INTERVAL + 1  # retried, coalesced like any write
    full[0] = False
    clock.t += 1.0
    pub.publish([], clock.t)
    assert log.events("info") == ["status_write_recovered"]
