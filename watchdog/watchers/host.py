"""The host: free space of the watched paths, memory, CPUs, privileges, storage (scope ``host``).

The sample (``statvfs`` can hang on a dead network filesystem) is taken in a background task
every ``host.poll_seconds``; the findings are re-judged when a sample arrives or when an image
load failure appears or goes (it turns a host-share data folder from a warning into an error).
"""
from __future__ import annotations

from typing import Callable

from watchdog.diagnosis import host as host_checks
from watchdog.diagnosis.problems import Change, ProblemBook
from watchdog.model import HostSample, HostView
from watchdog.scheduling import BackgroundTask
from watchdog.sources.host import HostReader
from watchdog.watchers.base import Board, Watcher

IMAGE_LOAD_FAILED = "images.load-failed"


class HostWatcher(Watcher):
    name = "host"

    def __init__(self, board: Board, sampler: Callable[[], HostSample] | None = None) -> None:
        super().__init__(board)
        s = board.settings
        paths = tuple(dict.fromkeys((*s.host.paths, s.host.data_dir)))
        self.task: BackgroundTask[HostSample] = BackgroundTask(
            "host", sampler or (lambda: HostReader().sample(paths)), s.host.poll_seconds, board.clock)
        board.tasks.append(self.task)
        self._started: float | None = None
        self._hung_said = False
        self._failing = False
        self._load_failure: tuple[str, ...] | None = None
        self._looked_in: ProblemBook | None = None
        self._load_failure_seen: tuple[str, ...] | None = None

    def on_tick(self, now: float) -> list[Change]:
        b = self.board
        task = self.task
        if now >= task.next_start and task.maybe_start(now):  # (the check first: a call less per tick)
            self._started = now
        elif self._started is not None and task.busy:
            stuck_for = now - self._started
            if stuck_for > b.settings.host.timeout_seconds and not self._hung_said:
                b.log.warning("host_check_hung", seconds=int(stuck_for),
                              note="statvfs of a watched path does not return (a hung network filesystem?)")
                self._hung_said = True
        fresh = False
        if task.finished:
            for outcome in task.take():
                self._hung_said = False
                if outcome.error is not None or outcome.value is None:
                    if not self._failing:
                        b.log.warning("host_check_failed", error=str(outcome.error))
                    self._failing = True
                    continue
                self._failing = False
                b.host_sample = outcome.value
                b.host = HostView(paths=dict(outcome.value.paths))
                fresh = True
        if b.host_sample is None:
            return []
        load_failure = self._image_load_failure()
        if fresh or load_failure != self._load_failure:
            return self._apply(b.host_sample, load_failure, now)
        return []

    def _image_load_failure(self) -> tuple[str, ...] | None:
        """The evidence of an active ``images.load-failed`` problem, or ``None``."""
        book = self.board.book
        if book is self._looked_in:
            return self._load_failure_seen
        self._looked_in = book  # books are immutable: looked at once each
        self._load_failure_seen = None
        for key, p in book.active.items():
            if key[0] == IMAGE_LOAD_FAILED:  # (id, subject): the id read without two attribute lookups
                self._load_failure_seen = p.finding.evidence
                break
        return self._load_failure_seen

    def _apply(self, sample: HostSample, load_failure: tuple[str, ...] | None, now: float) -> list[Change]:
        b = self.board
        key = ("images.bind-mount-storage", b.settings.host.data_dir)
        before = b.book.active.get(key)
        findings = host_checks.host_findings(b.rules, sample, b.settings.host, load_failure)
        changes = b.reconcile(host_checks.SCOPE, findings, now)
        after = b.book.active.get(key)
        if before is not None and after is not None and after.finding.severity.rank < before.finding.severity.rank:
            # Same problem, now worse: one line, as the raise had one.
            b.log.error("problem_escalated", id=key[0], subject=key[1], severity=after.finding.severity.value,
                        reason="image loading fails on a host-share data folder")
        self._load_failure = load_failure
        return changes
