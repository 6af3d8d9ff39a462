"""What the monitor says: alerts for what changed (stderr) and the status file, coalesced.

An event that changes no problem costs a clock comparison here: the status file is rendered at
most every ``MIN_WRITE_INTERVAL`` (a raise or resolve at once), and written when its content
changed or the heartbeat is due.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from watchdog import __version__
from watchdog.diagnosis import phases
from watchdog.diagnosis.problems import Change
from watchdog.sinks import alerts
from watchdog.sinks.status_file import Snapshot, dumps, render
from watchdog.watchers.base import Board
from watchdog.watchers.boot import BootWatcher

MIN_WRITE_INTERVAL = 0.25
"""Status file writes are coalesced to at most four a second."""
RETRY_SECONDS = 1.0
"""A failing write (full disk, read-only) is retried this often."""


class Publisher:
    def __init__(self, board: Board, boot: BootWatcher, writer: Callable[[str, str], None]) -> None:
        self.board = board
        self.boot = boot
        self.writer = writer
        self._last_written: dict[str, Any] | None = None
        self._last_write_at: float | None = None
        self._last_render_at: float | None = None
        self._write_failing = False

    def snapshot(self, now: float) -> Snapshot:
        b = self.board
        phase = self.boot.phase(now)
        return Snapshot(
            generated_at=now,
            version=__version__,
            pid=os.getpid(),
            started_at=b.started_at,
            overall=phases.overall(phase, b.book),
            phase=phase,
            layout=b.layout,  # issue 9
            processes=dict(b.processes),
            region=b.region,
            host=b.host,
            timeline=dict(self.boot.timeline),
            problems=tuple(b.book.ordered()),
            resolved=b.book.resolved,
        )

    def document(self, now: float) -> dict[str, Any]:
        return render(self.snapshot(now))

    def publish(self, changes: list[Change], now: float, force: bool = False) -> None:
        b = self.board
        if b.pending:
            changes, b.pending = [*b.pending, *changes], []
        if changes:
            alerts.emit(changes, b.settings.languages, b.log)
        since = None if self._last_write_at is None else now - self._last_write_at
        looked = None if self._last_render_at is None else now - self._last_render_at
        if not (force or changes or since is None or self._write_failing) and looked is not None \
                and looked < MIN_WRITE_INTERVAL:
            # Nothing could be written yet: skip rendering (the costliest step of an event) and
            # keep only the timeline current, so that phases are dated by their event.
            self.boot.phase(now)
            return
        self._last_render_at = now
        doc = self.document(now)
        comparable = {k: v for k, v in doc.items() if k != "generated_at"}
        changed = comparable != self._last_written
        due = (
            force
            or bool(changes)  # a raise or resolve is written at once; state churn is coalesced
            or since is None
            or (changed and since >= MIN_WRITE_INTERVAL)
            or since >= b.settings.heartbeat_seconds
            or (self._write_failing and since >= RETRY_SECONDS)
        )
        if not due:
            return
        self._last_write_at = now
        path = b.settings.status_file
        try:
            self.writer(path, dumps(doc))
        except OSError as e:
            if not self._write_failing:
                b.log.error("status_write_failed", path=path, error=e.strerror or str(e),
                            note="the previous status file is kept; retrying")
            self._write_failing = True
            return
        if self._write_failing:
            b.log.info("status_write_recovered", path=path)
            self._write_failing = False
        self._last_written = comparable
