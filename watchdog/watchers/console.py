"""The console: its HTTP port probed while it is RUNNING (scope ``console``).

``console.unreachable`` is raised past ``console.grace_seconds``; the probe's results go on the
board, where the boot watcher reads them (a console that answers is the boot's last phase).
"""
from __future__ import annotations

from typing import Callable

from watchdog.diagnosis import timeline as boot
from watchdog.diagnosis.problems import Change
from watchdog.model import UNKNOWN, ProbeResult
from watchdog.scheduling import BackgroundTask
from watchdog.sources.console_probe import probe as probe_console
from watchdog.watchers.base import Board, Watcher

COMPONENT = "console"


class ConsoleWatcher(Watcher):
    name = "console"

    def __init__(self, board: Board, prober: Callable[[], ProbeResult] | None = None) -> None:
        super().__init__(board)
        c = board.settings.console
        self.task: BackgroundTask[ProbeResult] = BackgroundTask(
            "console-probe", prober or (lambda: probe_console(c.host, c.port, c.path, c.timeout_seconds)),
            c.poll_seconds, board.clock)
        board.tasks.append(self.task)
        self._tails: list[tuple[str, tuple[str, ...]]] = []

    def on_tick(self, now: float) -> list[Change]:
        b = self.board
        c = b.settings.console
        if not c.probe:
            return []
        view = b.processes.get(COMPONENT)
        running = view is not None and view.state == "RUNNING"
        if running and now >= self.task.next_start:
            self.task.maybe_start(now)
        fresh = False
        if self.task.finished:
            for outcome in self.task.take():
                if outcome.error is not None or outcome.value is None:
                    result = ProbeResult(False, f"probe failed: {outcome.error}")
                else:
                    result = outcome.value
                b.probe, b.probed_at = result, outcome.started
                b.probe_ok_at = outcome.started if result.ok else None
                fresh = True
        known = view is not None and view.state != UNKNOWN
        if not fresh and (running or not known or boot.CONSOLE_SCOPE not in b.book.scopes):
            return []
        program = b.programs[COMPONENT]
        finding = boot.console_finding(b.rules, view, b.probe, b.probed_at, now, c.grace_seconds, program)
        if finding is not None:
            if not b.book.in_scope(boot.CONSOLE_SCOPE) or not self._tails:
                self._tails = [(t.path, t.lines) for t in b.tails_of(COMPONENT)]
            finding = boot.console_finding(
                b.rules, view, b.probe, b.probed_at, now, c.grace_seconds, program, self._tails)
        else:
            self._tails = []
        return b.reconcile(boot.CONSOLE_SCOPE, [finding] if finding else [], now)
