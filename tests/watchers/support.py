"""A board with its edges replaced: a settable clock, a log that records, log tails from a dict
(supervisord's XML-RPC: ``tests.test_app.FakeRpc``)."""
from __future__ import annotations

from typing import Any

from watchdog.config import Settings
from watchdog.diagnosis.rules import RuleBook
from watchdog.model import LogTail
from watchdog.watchers.base import Board

T0 = 1_790_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.t


class Log:
    """Records (level, event, fields) as structlog's calls would."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.lines.append((level, event, kw))

    def events(self, level: str | None = None) -> list[str]:
        return [e for lv, e, _ in self.lines if level is None or lv == level]


def make_board(settings: Settings, rules: RuleBook, tails: dict[str, list[str]] | None = None,
               clock: Clock | None = None) -> tuple[Board, Clock, Log]:
    clock = clock or Clock()
    log = Log()
    tails = tails or {}

    def read_tail(path: str) -> LogTail:
        name = path.rsplit("/", 1)[-1]
        return LogTail(path, tuple(tails.get(name, ())), () if name in tails else ("missing",))

    return Board(settings, rules, clock=clock, log=log, read_tail=read_tail), clock, log
